"""The threads that make dispatch calls: started as needed up to a cap, ended after a while idle.

A call blocks its thread for as long as the target takes, so the number of threads is the number of calls in flight.
ThreadPoolExecutor never gives a thread back, and its single FIFO would let one queue's backlog sit in front of
another queue's task; here the dispatcher admits calls fairly (see dispatcher.py) and this pool only has to run
them, so it starts a thread whenever no idle one is waiting.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger("oncetask-tasks-emulator.workers")
IDLE_SECONDS = 30.0


class WorkerPool:
    def __init__(self, max_threads: int, *, idle_seconds: float = IDLE_SECONDS, name: str = "dispatch"):
        self.max_threads = max_threads
        self._idle_seconds = idle_seconds
        self._name = name
        self._cond = threading.Condition()
        self._jobs: deque[tuple[Callable, tuple]] = deque()
        self._threads = 0
        self._waiting = 0  # threads blocked in wait(), notified or not
        self._closed = False
        self._seq = 0

    @property
    def threads(self) -> int:
        return self._threads

    def submit(self, fn: Callable, *args: object) -> None:
        """Run fn(*args) on a worker; raise RuntimeError once the pool is shut down."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            self._jobs.append((fn, args))
            # Every job in the line needs a thread of its own: a waiting thread that was notified but has not woken
            # yet is still counted in _waiting, so comparing with the line's length never relies on it twice.
            if self._waiting >= len(self._jobs):
                self._cond.notify()
            elif self._threads < self.max_threads:
                self._threads += 1
                self._seq += 1
                threading.Thread(target=self._work, name=f"{self._name}-{self._seq}", daemon=True).start()
            # else: at the cap, the job waits for the next thread to finish its call

    def shutdown(self) -> None:
        """Drop jobs not started yet and let idle threads end; calls in progress are not waited for."""
        with self._cond:
            self._closed = True
            self._jobs.clear()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    if self._closed:
                        self._threads -= 1
                        return
                    self._waiting += 1
                    woken = self._cond.wait(self._idle_seconds)
                    self._waiting -= 1
                    if not woken and not self._jobs:
                        self._threads -= 1  # idle long enough: give the thread (and its memory) back
                        return
                fn, args = self._jobs.popleft()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - a job's bug must not end the thread uncounted
                log.exception("dispatch job failed")
