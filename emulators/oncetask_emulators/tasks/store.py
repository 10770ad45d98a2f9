"""Queues, tasks and tombstones in memory (written through to SQLite with --data-dir), behind one lock.

The dispatcher shares the store's lock (its condition variable is built on it), so "is this task still pending,
and not already in flight?" and "mark it in flight" happen as one step: a task is never dispatched twice at once,
and a task deleted or purged during its attempt is not resurrected by the attempt's result.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from google.cloud.tasks_v2.types import queue as queue_types
from google.cloud.tasks_v2.types import task as task_types

from . import names, queueconfig, taskspec
from .errors import already_exists, failed_precondition, invalid, not_found
from .persistence import SqlitePersistence, TaskRow

Queue = queue_types.Queue.pb()
Task = task_types.Task.pb()
State = queue_types.Queue.State
View = task_types.Task.View
MAX_PAGE_SIZE = 1000


class Listener(Protocol):
    """The dispatcher, told about changes while the store's lock is held."""

    def task_scheduled(self, record: TaskRecord) -> None: ...

    def queue_changed(self, queue_name: str) -> None: ...


@dataclass
class TaskRecord:
    pb: object  # tasks_v2 Task (raw protobuf)
    queue: str
    due: float  # wall-clock seconds when it may be dispatched (already multiplied by the time scale)
    named: bool  # created with a caller's name: only those need a tombstone
    seq: int
    first_attempt: float | None = None  # wall-clock seconds of the first dispatch
    previous_response: int | None = None  # HTTP status of the previous attempt, when it got one
    retry_reason: str | None = None
    in_flight: bool = False
    schedule_ns: int = 0  # pb.schedule_time in nanoseconds, kept beside it: reading the proto's is slow

    def __post_init__(self) -> None:
        self.schedule_ns = self.pb.schedule_time.ToNanoseconds()

    @property
    def name(self) -> str:
        return self.pb.name

    def row(self) -> TaskRow:
        return TaskRow(self.name, self.queue, self.pb.SerializeToString(), self.due, self.named, self.first_attempt,
                       self.previous_response, self.retry_reason, self.seq)


@dataclass
class QueueRecord:
    pb: object  # tasks_v2 Queue (raw protobuf)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)  # creation order
    # Min-heap of (schedule_ns, push order, task) for Queue.stats' oldest arrival, cleaned lazily: an entry is stale
    # once its task is gone, in flight or rescheduled (a rescheduled task is pushed again).
    arrivals: list[tuple[int, int, TaskRecord]] = field(default_factory=list)
    _pushes: itertools.count = field(default_factory=itertools.count)

    def add(self, record: TaskRecord) -> None:
        """A task joined the queue or got a new schedule_time."""
        self.tasks[record.name] = record
        if len(self.arrivals) > 2 * len(self.tasks) + 64:  # mostly stale: rebuild, so the heap stays O(tasks)
            self.arrivals = [(r.schedule_ns, next(self._pushes), r) for r in self.tasks.values() if not r.in_flight]
            heapq.heapify(self.arrivals)
        else:
            heapq.heappush(self.arrivals, (record.schedule_ns, next(self._pushes), record))

    def oldest_arrival(self) -> int | None:
        """The earliest schedule_time (ns) among tasks waiting for dispatch: amortised O(log n)."""
        heap = self.arrivals
        while heap:
            ns, _, record = heap[0]
            if self.tasks.get(record.name) is record and not record.in_flight and record.schedule_ns == ns:
                return ns
            # In flight: the attempt's result reschedules the task (pushed again) or removes it.
            heapq.heappop(heap)
        return None


@dataclass
class Counters:
    tasks_created: int = 0
    dispatches: int = 0
    responses: int = 0
    successes: int = 0
    failed_attempts: int = 0
    tasks_given_up: int = 0
    # Per queue, as a fault test counts "one task per job" while other queues (the scheduler's) stay busy.
    tasks_created_by_queue: dict[str, int] = field(default_factory=dict)


def _page(items: list, page_size: int, page_token: str) -> tuple[list, str]:
    if page_size < 0:
        raise invalid("page_size must not be negative")
    try:
        start = int(page_token or 0)
    except ValueError:
        raise invalid(f"page_token {page_token!r} was not returned by this emulator") from None
    size = min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


def _set_time(timestamp, when: float) -> None:
    timestamp.FromNanoseconds(int(when * 1e9))


class Store:
    def __init__(self, *, tombstone_seconds: float = 3600.0, queue_tombstone_seconds: float = 0.0,
                 time_scale: float = 1.0, persistence: SqlitePersistence | None = None):
        self.lock = threading.RLock()
        self.tombstone_seconds = tombstone_seconds
        self.queue_tombstone_seconds = queue_tombstone_seconds
        self.time_scale = time_scale
        self.queues: dict[str, QueueRecord] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.tombstones: dict[str, float] = {}  # task name -> wall-clock expiry
        self.deleted_queues: dict[str, float] = {}  # queue name -> wall-clock time its name is free again
        self.counters = Counters()
        self.listener: Listener | None = None
        self._persistence = persistence
        self._seq = itertools.count()
        self._next_sweep = 0.0
        if persistence:
            self._load(persistence)

    # ---- persistence -------------------------------------------------------------------------------------
    def _load(self, persistence: SqlitePersistence) -> None:
        queues, tasks, tombstones = persistence.load()
        for name, data in queues:
            self.queues[name] = QueueRecord(Queue.FromString(data))
        for row in tasks:
            if row.queue not in self.queues:
                continue
            record = TaskRecord(Task.FromString(row.data), row.queue, row.due, row.named, row.seq, row.first_attempt,
                                row.previous_response, row.retry_reason)
            self.queues[row.queue].add(record)
            self.tasks[row.name] = record
        self.tombstones = dict(tombstones)
        self._seq = itertools.count(max((r.seq for r in tasks), default=-1) + 1)

    def _save_queue(self, record: QueueRecord) -> None:
        if self._persistence:
            self._persistence.save_queue(record.pb.name, record.pb.SerializeToString())

    def _save_task(self, record: TaskRecord) -> None:
        if self._persistence:
            self._persistence.save_task(record.row())

    def all_tasks(self) -> Iterator[TaskRecord]:
        return iter(list(self.tasks.values()))

    # ---- queues ------------------------------------------------------------------------------------------
    def _queue(self, name: str) -> QueueRecord:
        names.queue(name)
        record = self.queues.get(name)
        if record is None:
            raise not_found(f"queue {name} does not exist")
        return record

    def create_queue(self, parent: str, queue) -> object:
        names.location(parent)
        names.queue(queue.name)
        if names.parent_of(queue.name) != parent:
            raise invalid(f"queue name {queue.name} is not in parent {parent}")
        queue = Queue.FromString(queue.SerializeToString())
        queueconfig.complete(queue)
        queue.state = State.RUNNING
        with self.lock:
            if queue.name in self.queues:
                raise already_exists(f"queue {queue.name} already exists")
            free_at = self.deleted_queues.get(queue.name, 0.0)
            if free_at > time.time():
                raise failed_precondition(f"queue {queue.name} was deleted recently; its name cannot be reused "
                                          f"for another {free_at - time.time():.0f}s")
            record = QueueRecord(queue)
            self.queues[queue.name] = record
            self._save_queue(record)
            return self._copy(queue)

    def get_queue(self, name: str) -> object:
        with self.lock:
            return self._copy(self._queue(name).pb)

    def list_queues(self, parent: str, page_size: int, page_token: str, filter_: str) -> tuple[list, str]:
        names.location(parent)
        if filter_:
            raise invalid("filter is not supported by this emulator")
        with self.lock:
            queues = [self._copy(r.pb) for n, r in sorted(self.queues.items()) if names.parent_of(n) == parent]
        return _page(queues, page_size, page_token)

    def update_queue(self, queue, mask) -> object:
        """UpdateQueue; like the service, it creates the queue when it does not exist."""
        names.queue(queue.name)
        with self.lock:
            record = self.queues.get(queue.name)
            if record is None:
                return self.create_queue(names.parent_of(queue.name), queue)
            record.pb = queueconfig.merge(record.pb, queue, mask)
            self._save_queue(record)
            self._notify_queue(queue.name)
            return self._copy(record.pb)

    def delete_queue(self, name: str) -> None:
        with self.lock:
            record = self._queue(name)
            del self.queues[name]
            for task_name in record.tasks:
                self.tasks.pop(task_name, None)
            if self.queue_tombstone_seconds > 0:
                self.deleted_queues[name] = time.time() + self.queue_tombstone_seconds
            if self._persistence:
                self._persistence.delete_queue(name)
            self._notify_queue(name)

    def set_state(self, name: str, state: int) -> object:
        with self.lock:
            record = self._queue(name)
            record.pb.state = state
            self._save_queue(record)
            self._notify_queue(name)
            return self._copy(record.pb)

    def purge_queue(self, name: str) -> object:
        with self.lock:
            record = self._queue(name)
            for task in list(record.tasks.values()):
                self._remove(task)
            _set_time(record.pb.purge_time, time.time())
            self._save_queue(record)
            return self._copy(record.pb)

    def _notify_queue(self, name: str) -> None:
        if self.listener:
            self.listener.queue_changed(name)

    # ---- tasks -------------------------------------------------------------------------------------------
    def create_task(self, parent: str, task, view: int) -> object:
        names.queue(parent)
        task = Task.FromString(task.SerializeToString())
        named = bool(task.name)
        if named:
            names.task(task.name)
            if names.queue_of(task.name) != parent:
                raise invalid(f"task name {task.name} is not in queue {parent}")
        now = time.time()
        with self.lock:
            queue = self._queue(parent)
            taskspec.complete(task, queue.pb, now)
            if named:
                self._refuse_duplicate(task.name, now)
            else:
                task.name = names.random_task_name(parent)
            _set_time(task.create_time, int(now))
            scheduled = task.schedule_time.ToNanoseconds() / 1e9 if task.HasField("schedule_time") else now
            if not task.HasField("schedule_time"):
                _set_time(task.schedule_time, now)
            # A future schedule_time waits (schedule_time - now) * time_scale of real time.
            due = now + max(0.0, scheduled - now) * self.time_scale
            record = TaskRecord(task, parent, due, named, next(self._seq))
            queue.add(record)
            self.tasks[task.name] = record
            self._save_task(record)
            self.counters.tasks_created += 1
            self.counters.tasks_created_by_queue[parent] = self.counters.tasks_created_by_queue.get(parent, 0) + 1
            if self.listener:
                self.listener.task_scheduled(record)
            return self.task_view(task, view)

    def _refuse_duplicate(self, name: str, now: float) -> None:
        if name in self.tasks:
            raise already_exists(f"task {name} already exists")
        expires = self.tombstones.get(name)
        if expires is not None:
            if expires > now:
                raise already_exists(f"task {name} was executed or deleted less than "
                                     f"{self.tombstone_seconds:g}s ago; its name cannot be reused yet")
            del self.tombstones[name]
        if now >= self._next_sweep:  # drop expired tombstones now and then, so they do not pile up
            self._next_sweep = now + 60
            self.tombstones = {n: t for n, t in self.tombstones.items() if t > now}
            if self._persistence:
                self._persistence.purge_tombstones(now)

    def _task(self, name: str) -> TaskRecord:
        names.task(name)
        record = self.tasks.get(name)
        if record is None:
            self._queue(names.queue_of(name))  # a missing queue is reported as such
            raise not_found(f"task {name} does not exist (or has already succeeded or been deleted)")
        return record

    def get_task(self, name: str, view: int) -> object:
        with self.lock:
            return self.task_view(self._task(name).pb, view)

    def list_tasks(self, parent: str, view: int, page_size: int, page_token: str) -> tuple[list, str]:
        with self.lock:
            records = list(self._queue(parent).tasks.values())
            page, token = _page(records, page_size, page_token)
            return [self.task_view(r.pb, view) for r in page], token

    def delete_task(self, name: str) -> None:
        with self.lock:
            self._remove(self._task(name))

    def task_for_run(self, name: str) -> TaskRecord:
        with self.lock:
            record = self._task(name)
            if record.in_flight:
                raise failed_precondition(f"task {name} is being dispatched right now")
            return record

    def _remove(self, record: TaskRecord) -> None:
        """Forget a task; a named one leaves a tombstone so its name is refused for tombstone_seconds."""
        self.tasks.pop(record.name, None)
        queue = self.queues.get(record.queue)
        if queue:
            queue.tasks.pop(record.name, None)
        until = time.time() + self.tombstone_seconds if record.named else None
        if until is not None:
            self.tombstones[record.name] = until
        if self._persistence:
            self._persistence.delete_task(record.name, until)

    # ---- attempts (called by the dispatcher with the lock held) -------------------------------------------
    def is_pending(self, record: TaskRecord) -> bool:
        return self.tasks.get(record.name) is record

    def finish(self, record: TaskRecord, *, remove: bool) -> None:
        """Persist an attempt's result: the task is gone (`remove`), or waits for its next attempt."""
        if not self.is_pending(record):
            return  # deleted or purged while in flight: nothing to record
        if remove:
            self._remove(record)
        else:
            record.schedule_ns = record.pb.schedule_time.ToNanoseconds()
            self.queues[record.queue].add(record)
            self._save_task(record)
            if self.listener:
                self.listener.task_scheduled(record)

    # ---- views -------------------------------------------------------------------------------------------
    @staticmethod
    def _copy(message) -> object:
        copy = type(message)()
        copy.CopyFrom(message)
        return copy

    @staticmethod
    def task_view(task, view: int) -> object:
        copy = Store._copy(task)
        copy.view = view if view == View.FULL else View.BASIC
        if copy.view == View.BASIC:
            copy.http_request.ClearField("body")  # BASIC omits what can be large or sensitive
        return copy

    def pending_counts(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {name: {"pending": len(q.tasks), "in_flight": sum(t.in_flight for t in q.tasks.values()),
                           "state": State(q.pb.state).name}
                    for name, q in self.queues.items()}
