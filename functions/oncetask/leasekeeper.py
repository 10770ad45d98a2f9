"""The worker's side of the lease: a heartbeat that renews it, fenced writes, and a cheap local `check()`.

All of a worker's writes to its job (heartbeats, checkpoints, the final write) go through one lock, so the worker
always knows the document's latest update_time and can fence every write on it. A refused write means someone
else wrote the job: re-read it; if our fencing token still holds, it was a cancel request (stop and clean up) or
another harmless change (write again on the new version); otherwise the lease is lost and we write nothing more.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from .errors import Cancelled, LeaseLost
from .job import Job
from .jobstore import JobStore, StaleWrite
from .lease import lease_expiry, local_deadline
from .logs import get_logger, log
from .states import JobState

LOG = get_logger("lease")


class LeaseKeeper:
    def __init__(self, store: JobStore, job: Job, worker_id: str, ttl_seconds: float, heartbeat_seconds: float,
                 acquired_at_monotonic: float) -> None:
        self.store = store
        self.job = job
        self.worker_id = worker_id
        self.ttl_seconds = ttl_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._deadline = local_deadline(acquired_at_monotonic, ttl_seconds)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lost: str | None = None
        self._cancelled = False
        self._released = False  # the holder wrote a state that ends its lease (completed, retrying, failed...)
        self._thread = threading.Thread(target=self._heartbeat, name=f"lease-{job.job_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self.ttl_seconds)

    def check(self) -> None:
        """Raise if this worker must stop. No network: the heartbeat keeps the flags and the deadline current."""
        if self._lost:
            raise LeaseLost(message=self._lost)
        if self._cancelled:
            raise Cancelled(message="the job was cancelled")
        if time.monotonic() > self._deadline:
            # Paused past the lease (or the heartbeat cannot reach Firestore): another worker may own the job now.
            raise LeaseLost(message="the lease expired before it could be renewed")

    def write(self, changes: dict[str, Any], to: JobState | None = None, **extra: Any) -> Job:
        """A fenced write of the job by its lease holder (see module docstring for what a refusal means)."""
        with self._lock:
            if self._lost:
                raise LeaseLost(message=self._lost)
            if self._released:
                # A heartbeat that fired just as the job finished must not put a lease back on it.
                raise LeaseLost(message="the lease was released")
            if self._cancelled and to not in (JobState.CANCELLED, JobState.FAILED):
                # A cancel the heartbeat already saw (and refreshed past) must win over the holder's next write,
                # exactly as when that write itself is refused; otherwise an accepted cancel could end "completed".
                raise Cancelled(message="the job was cancelled")
            for _ in range(3):
                try:
                    self.job = self.store.commit(self.job, changes, to, **extra)
                    if to is not None and to is not JobState.RUNNING:
                        self._released = True
                        self._stop.set()
                    return self.job
                except StaleWrite:
                    self._refresh()  # raises LeaseLost when the lease is no longer ours
                    if self._cancelled and to not in (JobState.CANCELLED, JobState.FAILED):
                        raise Cancelled(message="the job was cancelled") from None
            raise LeaseLost(message="the job keeps changing under its lease holder")

    def _refresh(self) -> None:
        fresh = self.store.get(self.job.job_id)
        if (fresh is None or fresh.fencing != self.job.fencing or fresh.lease_owner != self.worker_id
                or fresh.state is not JobState.RUNNING):
            self._lost = "another worker or cleanup took the job"
            raise LeaseLost(message=self._lost)
        self.job = fresh
        self._cancelled = fresh.cancel_requested

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            sent = time.monotonic()
            try:
                self.write({"lease_expires_at": lease_expiry(datetime.now(timezone.utc), self.ttl_seconds)})
                self._deadline = local_deadline(sent, self.ttl_seconds)
            except Cancelled:
                self._cancelled = True  # the stage sees it at its next check()
            except LeaseLost as exc:
                if self._released:
                    return  # the job left RUNNING under this lease: nothing is left to renew
                self._lost = exc.message
                log(LOG, logging.WARNING, "lease lost", job_id=self.job.job_id, reason=exc.message)
                return
            except Exception as exc:  # noqa: BLE001 - a failed renewal is retried; the local deadline bounds it
                log(LOG, logging.WARNING, "lease renewal failed", job_id=self.job.job_id, error=str(exc))

