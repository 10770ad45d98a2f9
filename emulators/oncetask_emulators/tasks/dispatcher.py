"""Dispatch of due tasks to their HTTP targets: a timer heap and a condition variable, a thread pool for calls.

One scheduler thread sleeps on the condition until the earliest timer (a task's due time, or a rate-limited
queue's next token), moves due tasks into their queue's ready line, and starts as many as the queue's token bucket
(at the system throttle's effective rate) and concurrency allow. Workers make the HTTP call without the lock and
take it again to record the result. Every exception in a worker is caught and counted as a failed attempt, so the
dispatcher cannot die or leak a slot.

Queues are independent: each has its own ready line, bucket and slots, and a call holds a thread of its own, so a
queue saturated by a slow target never delays another queue's tasks. The only shared resource is the cap on
threads (--dispatch-workers); when it is reached, the queues waiting for a thread get the freed ones in turn, the
one that started a call least recently first, so a deep backlog in one queue cannot sit in front of another's task.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from google.cloud.tasks_v2.types import target as target_types
from google.rpc import code_pb2, status_pb2

from . import names, queueconfig
from .backoff import retry_delay, should_retry
from .oidc import TokenMinter
from .queuestats import QueueFigures
from .ratelimit import QueueLimits
from .store import State, Store, TaskRecord
from .targetfaults import TargetFaults
from .throttle import THROTTLING_STATUSES, retry_after_seconds
from .transport import Outcome, send
from .workers import WorkerPool

log = logging.getLogger("oncetask-tasks-emulator.dispatch")
HttpMethod = target_types.HttpMethod

# Headers the service sets itself; a task's own values for them are dropped.
_RESERVED = {"host", "content-length", "user-agent", "authorization"}


def rpc_code(outcome: Outcome) -> int:
    """The google.rpc code recorded in last_attempt.response_status for an attempt's outcome."""
    if outcome.status is None:
        return code_pb2.DEADLINE_EXCEEDED if outcome.reason.startswith("DEADLINE_EXCEEDED") else code_pb2.UNAVAILABLE
    return http_to_rpc(outcome.status)


def http_to_rpc(status: int) -> int:
    """The google.rpc code for an HTTP status, as Cloud Tasks maps them."""
    if 200 <= status < 300:
        return code_pb2.OK
    return {400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED, 403: code_pb2.PERMISSION_DENIED,
            404: code_pb2.NOT_FOUND, 409: code_pb2.ABORTED, 429: code_pb2.RESOURCE_EXHAUSTED,
            499: code_pb2.CANCELLED, 501: code_pb2.UNIMPLEMENTED, 503: code_pb2.UNAVAILABLE,
            504: code_pb2.DEADLINE_EXCEEDED}.get(status, code_pb2.INTERNAL if status >= 500 else
                                                 code_pb2.FAILED_PRECONDITION)


def request_headers(task, record: TaskRecord, retry_count: int, execution_count: int) -> dict[str, str]:
    """The task's headers plus the X-CloudTasks-* ones, as the target sees them on this attempt."""
    request = task.http_request
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _RESERVED}
    if request.body and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/octet-stream"
    headers.update({
        "User-Agent": "Google-Cloud-Tasks",
        "X-CloudTasks-QueueName": names.short(record.queue),
        "X-CloudTasks-TaskName": names.short(task.name),
        "X-CloudTasks-TaskRetryCount": str(retry_count),
        "X-CloudTasks-TaskExecutionCount": str(execution_count),
        "X-CloudTasks-TaskETA": f"{task.schedule_time.ToNanoseconds() / 1e9:.6f}",
    })
    if retry_count > 0:
        if record.previous_response is not None:
            headers["X-CloudTasks-TaskPreviousResponse"] = str(record.previous_response)
        if record.retry_reason:
            headers["X-CloudTasks-TaskRetryReason"] = record.retry_reason
    return headers


@dataclass
class Job:
    """One attempt, with everything it needs copied out of the task while the lock was held."""

    record: TaskRecord
    limits: QueueLimits
    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    deadline: float
    oidc: tuple[str, str] | None  # (service account, audience)
    generation: int  # the queue's throttle generation when the attempt started


class Dispatcher:
    def __init__(self, store: Store, minter: TokenMinter, *, deadline_scale: float = 1.0,
                 target_faults: TargetFaults | None = None, max_workers: int = 2000):
        self.store = store
        self.minter = minter
        self.deadline_scale = deadline_scale
        self.target_faults = target_faults or TargetFaults()
        self.cond = threading.Condition(store.lock)  # the store's lock: see store.py
        self._timers: list[tuple[float, int, TaskRecord | None, str, float]] = []
        self._seq = itertools.count()
        self._ready: dict[str, deque[tuple[TaskRecord, float]]] = {}
        self._limits: dict[str, QueueLimits] = {}
        self._wake_at: dict[str, float] = {}  # a rate-limited queue's pending wake-up
        self._pool = WorkerPool(max_workers)
        self._max_workers = max_workers
        self._busy = 0  # calls started and not yet recorded, all queues together
        self._starved: set[str] = set()  # queues with a startable task and no thread for it
        self._starts = itertools.count()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        with self.cond:
            store.listener = self
            for record in store.all_tasks():  # restored from --data-dir
                self.task_scheduled(record)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self.cond:
            self._stopping = True
            self.cond.notify_all()
        self._thread.join(5)
        self._pool.shutdown()

    # ---- store listener (lock held) ----------------------------------------------------------------------
    def task_scheduled(self, record: TaskRecord) -> None:
        heapq.heappush(self._timers, (record.due, next(self._seq), record, record.queue, record.due))
        self.cond.notify()

    def queue_changed(self, queue_name: str) -> None:
        queue = self.store.queues.get(queue_name)
        if queue is None:
            self._ready.pop(queue_name, None)
            self._limits.pop(queue_name, None)
            self._starved.discard(queue_name)
            return
        limits = self._limits.get(queue_name)
        if limits is not None:
            rl = queue.pb.rate_limits
            limits.reconfigure(rl.max_dispatches_per_second, rl.max_burst_size, rl.max_concurrent_dispatches)
        self._pump(queue_name)

    # ---- scheduling (lock held) --------------------------------------------------------------------------
    def _limits_for(self, queue_name: str) -> QueueLimits:
        limits = self._limits.get(queue_name)
        if limits is None:
            rl = self.store.queues[queue_name].pb.rate_limits
            limits = self._limits[queue_name] = QueueLimits.for_rate(
                rl.max_dispatches_per_second, rl.max_burst_size, rl.max_concurrent_dispatches, time.monotonic())
        return limits

    def queue_figures(self, queue_name: str) -> QueueFigures:
        """Queue.stats of a queue that exists, as of now (lock held)."""
        queue = self.store.queues[queue_name]
        limits = self._limits.get(queue_name)
        if limits is None:  # nothing was ever dispatched from it
            return QueueFigures(len(queue.tasks), queue.oldest_arrival(), 0, 0,
                                queue.pb.rate_limits.max_dispatches_per_second)
        return QueueFigures(len(queue.tasks), queue.oldest_arrival(), limits.executed.count(time.monotonic()),
                            limits.in_flight, limits.throttle.rate)

    def _still_due(self, record: TaskRecord, due: float) -> bool:
        # A timer or ready entry is stale when its task was deleted, is in flight (RunTask) or was rescheduled.
        return self.store.is_pending(record) and not record.in_flight and record.due == due

    def _run(self) -> None:
        with self.cond:
            while not self._stopping:
                try:
                    self._fire_timers()
                except Exception:  # noqa: BLE001 - the scheduler must outlive any bug in one step
                    log.exception("scheduler step failed")
                timeout = self._timers[0][0] - time.time() if self._timers else None
                if timeout is None or timeout > 0:
                    self.cond.wait(timeout)

    def _fire_timers(self) -> None:
        now = time.time()
        touched: set[str] = set()
        while self._timers and self._timers[0][0] <= now:
            _, _, record, queue_name, due = heapq.heappop(self._timers)
            if record is None:
                if self._wake_at.get(queue_name) == due:
                    del self._wake_at[queue_name]
            elif self._still_due(record, due):
                self._ready.setdefault(queue_name, deque()).append((record, due))
            touched.add(queue_name)
        for queue_name in touched:
            self._pump(queue_name)

    def _pump(self, queue_name: str, budget: int | None = None) -> None:
        """Start the queue's ready tasks (at most `budget`) while it runs and has a token, a free concurrency slot
        and a thread to call with."""
        queue = self.store.queues.get(queue_name)
        ready = self._ready.get(queue_name)
        if queue is None or not ready or queue.pb.state != State.RUNNING:
            return  # a paused queue keeps its ready line: ResumeQueue pumps it again
        limits = self._limits_for(queue_name)
        while ready and budget != 0:
            record, due = ready[0]
            if not self._still_due(record, due):
                ready.popleft()
                continue
            if not limits.has_slot():
                return  # the attempt that frees a slot pumps again
            if self._busy >= self._max_workers:
                self._starved.add(queue_name)  # the next call to end, in any queue, hands its thread on
                return
            wait = limits.bucket.try_take(time.monotonic())
            if wait > 0:
                when = time.time() + wait
                # A pending wake-up computed at a slower rate than the bucket's current one is replaced.
                if queue_name not in self._wake_at or when < self._wake_at[queue_name] - 0.001:
                    self._wake_at[queue_name] = when
                    heapq.heappush(self._timers, (when, next(self._seq), None, queue_name, when))
                    self.cond.notify()
                return
            ready.popleft()
            self._start(record, limits)
            if budget is not None:
                budget -= 1
        if ready and budget == 0:
            self._starved.add(queue_name)

    def _hand_on_threads(self) -> None:
        """Give free threads to the queues that waited for one, one call at a time, least recently served first."""
        while self._starved and self._busy < self._max_workers:
            queue_name = min(self._starved, key=lambda q: self._limits[q].last_start if q in self._limits else -1)
            self._starved.discard(queue_name)
            self._pump(queue_name, budget=1)

    def run_now(self, record: TaskRecord) -> None:
        """RunTask: dispatch at once, whatever the schedule, the rate limits or a paused queue say."""
        self._start(record, self._limits_for(record.queue))

    def _start(self, record: TaskRecord, limits: QueueLimits) -> None:
        task = record.pb
        now = time.time()
        retry_count, execution_count = task.dispatch_count, task.response_count
        record.in_flight = True
        limits.in_flight += 1
        limits.last_start = next(self._starts)
        self._busy += 1
        task.dispatch_count += 1
        if not task.HasField("first_attempt"):
            task.first_attempt.dispatch_time.FromNanoseconds(int(now * 1e9))
            record.first_attempt = now
        task.last_attempt.Clear()
        task.last_attempt.schedule_time.CopyFrom(task.schedule_time)
        task.last_attempt.dispatch_time.FromNanoseconds(int(now * 1e9))
        self.store.counters.dispatches += 1
        request = task.http_request
        oidc = None
        if request.HasField("oidc_token"):
            oidc = (request.oidc_token.service_account_email, request.oidc_token.audience or request.url)
        job = Job(record, limits, request.url, HttpMethod(request.http_method).name,
                  request_headers(task, record, retry_count, execution_count), request.body,
                  queueconfig.seconds(task.dispatch_deadline) * self.deadline_scale, oidc, limits.throttle.generation)
        try:
            self._pool.submit(self._attempt, job)
        except RuntimeError:  # the pool is shutting down: leave the task pending, its slot free
            record.in_flight = False
            limits.in_flight -= 1
            self._busy -= 1
            task.dispatch_count -= 1
            self.store.counters.dispatches -= 1

    # ---- attempts (worker threads) -----------------------------------------------------------------------
    def _attempt(self, job: Job) -> None:
        outcome = Outcome(None, "INTERNAL: the emulator failed to dispatch")
        try:
            outcome = self._call(job)
        except Exception as error:  # noqa: BLE001 - any bug here is a failed attempt, never a dead worker
            log.exception("dispatch of %s failed", job.record.name)
            outcome = Outcome(None, f"INTERNAL: {type(error).__name__}: {error}")
        finally:
            with self.cond:
                try:
                    self._record(job, outcome)
                except Exception:  # noqa: BLE001
                    log.exception("recording the attempt of %s failed", job.record.name)
                finally:
                    job.record.in_flight = False
                    job.limits.in_flight -= 1
                    self._busy -= 1
                    try:
                        self._hand_on_threads()  # before this queue's own line: others may have waited longer
                        self._pump(job.record.queue)
                    except Exception:  # noqa: BLE001
                        log.exception("pumping %s failed", job.record.queue)
                    self.cond.notify()

    def _call(self, job: Job) -> Outcome:
        fault = self.target_faults.draw()
        if fault.fail:
            return Outcome(503, "HTTP status 503 (injected by --target-fault)")
        if fault.delay:
            if fault.delay >= job.deadline:
                time.sleep(job.deadline)
                return Outcome(None, "DEADLINE_EXCEEDED: injected slowness outlasted the dispatch deadline")
            time.sleep(fault.delay)
        headers = job.headers
        if job.oidc:
            headers = {**headers, "Authorization": f"Bearer {self.minter.token(*job.oidc)}"}
        return send(job.url, job.method, headers, job.body, max(0.001, job.deadline - fault.delay))

    def _record(self, job: Job, outcome: Outcome) -> None:
        """Write the attempt's result into the queue's figures and the task, then end the task or schedule its
        retry (lock held)."""
        record, limits = job.record, job.limits
        task, now = record.pb, time.time()
        counters = self.store.counters
        # The queue's throttle and figures count the attempt even when its task was deleted meanwhile.
        limits.observe(outcome.status, job.generation)
        if outcome.status is not None:
            limits.executed.add(time.monotonic())
            task.response_count += 1
            counters.responses += 1
        task.last_attempt.response_time.FromNanoseconds(int(now * 1e9))
        task.last_attempt.response_status.CopyFrom(
            status_pb2.Status(code=rpc_code(outcome), message=outcome.reason))
        queue = self.store.queues.get(record.queue)
        if queue is None or not self.store.is_pending(record):
            return  # deleted or purged while in flight
        if outcome.succeeded:
            counters.successes += 1
            self.store.finish(record, remove=True)
            return
        counters.failed_attempts += 1
        policy = queueconfig.retry_policy(queue.pb)
        scale = self.store.time_scale
        since_first = (now - (record.first_attempt or now)) / scale if scale > 0 else 0.0
        if not should_retry(policy, task.dispatch_count, since_first):
            counters.tasks_given_up += 1
            self.store.finish(record, remove=True)
            return
        delay = retry_delay(policy, task.dispatch_count)
        if outcome.status in THROTTLING_STATUSES:
            delay = max(delay, retry_after_seconds(outcome.retry_after, now) or 0.0)
        record.due = now + delay * scale  # Retry-After is a delay like any backoff: scaled alike
        task.schedule_time.FromNanoseconds(int(record.due * 1e9))
        record.previous_response = outcome.status
        record.retry_reason = outcome.reason
        self.store.finish(record, remove=False)
