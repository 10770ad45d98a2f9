"""The worker's side of the lease: a heartbeat that renews it, fenced writes, a stage deadline, a cheap `check()`.

All of a worker's writes to its job (heartbeats, checkpoints, the final write, and the fence of its batches to
other collections) go through one lock, so the worker always knows the document's latest update_time and can fence
every write on it. A refused write means someone else wrote the job: re-read it; if our fencing token still holds,
it was a cancel request (stop and clean up) or another harmless change (write again on the new version); otherwise
the lease is lost and we write nothing more.

Every write of the holder renews the lease: it stamps `lease_renewed_at` with the server's commit time, which is
what everyone else judges the lease by. The holder itself trusts its lease only until a local deadline measured on
its own monotonic clock from when the renewing write was sent (`lease.local_deadline`).

Cancels reach the holder two ways: a renewal refused because the job changed (the heartbeat: within lease_ttl/3),
or at once through the process's `CancelWatch` (a Firestore listener), which tells the keeper of a cancel of its
own lease; either way the stage's next `check()` raises `Cancelled` and the holder writes the end, fenced.

A stage's progress (`ctx.progress`) is kept here and rides on the holder's next write (the heartbeat's, or a
checkpoint): it never costs a write of its own, so it adds at most one value per heartbeat interval.

A stage has a deadline too. Past it `check()` raises `StageTimeout`; and if the stage is hung (it never calls
`check()`), the heartbeat stops renewing and ends the attempt itself through `on_stage_timeout`, so a hung stage
cannot keep its job `running` forever, and the hung thread, if it ever wakes, finds the lease released.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from google.cloud import firestore

from .errors import Cancelled, LeaseLost, StageTimeout
from .shutdown import SHUTTING_DOWN, ShuttingDown
from .job import Job
from .jobstore import JobStore, StaleWrite, Write
from .lease import local_deadline
from .logs import Event, get_logger, in_context, log
from .states import JobState

if TYPE_CHECKING:
    from .cancelwatch import CancelWatch

LOG = get_logger("lease")
RENEWED = "lease_renewed_at"
PROGRESS = "progress"
MAX_PROGRESS_MESSAGE = 200


class LeaseKeeper:
    def __init__(self, store: JobStore, job: Job, worker_id: str, ttl_seconds: float, heartbeat_seconds: float,
                 acquired_at_monotonic: float, on_stage_timeout: Callable[[], None] | None = None,
                 watch: CancelWatch | None = None) -> None:
        self.store = store
        self.job = job
        self.worker_id = worker_id
        self.ttl_seconds = ttl_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.on_stage_timeout = on_stage_timeout
        self._deadline = local_deadline(acquired_at_monotonic, ttl_seconds)
        self._stage: str | None = None
        self._stage_deadline = float("inf")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()  # the heartbeat's sleep ends early: stopped, or a new stage deadline
        self._lost: str | None = None
        self._cancelled = False
        self._released = False  # the holder wrote a state that ends its lease (completed, retrying, failed...)
        # The latest ctx.progress() and the one last written: a reference swap, so the stage's thread never waits.
        self._progress: dict[str, Any] | None = None
        self._written_progress: dict[str, Any] | None = None
        self.watch = watch
        self._unwatch: Callable[[], None] | None = None
        self.renewals = 0  # heartbeat writes that succeeded
        # The heartbeat runs in a copy of this request's log context: its lines carry the job, task and trace.
        self._thread = threading.Thread(target=in_context(self._heartbeat), name=f"lease-{job.job_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        if self.watch is not None:
            self._unwatch = self.watch.register(self.job.job_id, self._cancel_seen)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=self.ttl_seconds)

    # The stage's view ---------------------------------------------------------------------------------------

    def begin_stage(self, name: str, timeout_seconds: float) -> None:
        self._stage = name
        self._stage_deadline = time.monotonic() + timeout_seconds
        self._wake.set()

    def check(self) -> None:
        """Raise if this worker must stop. No network: the heartbeat keeps the flags and the deadlines current."""
        if self._lost:
            raise LeaseLost(message=self._lost)
        if self._released:
            raise LeaseLost(message="the job left this worker's hands")
        if self._cancelled:
            raise Cancelled(message="the job was cancelled")
        if SHUTTING_DOWN.is_set():
            raise ShuttingDown(message="this instance is shutting down")
        now = time.monotonic()
        if now > self._deadline:
            # Paused past the lease (or the heartbeat cannot reach Firestore): another worker may own the job now.
            raise LeaseLost(message="the lease expired before it could be renewed")
        if now > self._stage_deadline:
            raise StageTimeout(message=f"stage {self._stage} ran past its deadline")

    def report_progress(self, fraction: float, message: str = "") -> None:
        """A stage's `ctx.progress()`: kept until the next write of the holder carries it (no write of its own)."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise TypeError(f"ctx.progress: fraction must be a number from 0 to 1, not {type(fraction).__name__}")
        if not math.isfinite(fraction):
            raise ValueError(f"ctx.progress: fraction must be a finite number from 0 to 1, not {fraction}")
        if not isinstance(message, str):
            raise TypeError(f"ctx.progress: message must be a str, not {type(message).__name__}")
        self._progress = {"stage": self._stage, "fraction": min(1.0, max(0.0, float(fraction))),
                          "message": message[:MAX_PROGRESS_MESSAGE], "at": datetime.now(timezone.utc)}

    def time_left(self) -> float:
        """Seconds this worker may still act on its lease and within its stage's deadline."""
        return min(self._deadline, self._stage_deadline) - time.monotonic()

    # Writes -------------------------------------------------------------------------------------------------

    def write(self, changes: dict[str, Any], to: JobState | None = None, **extra: Any) -> Job:
        """A fenced write of the job by its lease holder (see module docstring for what a refusal means)."""
        releases = to is not None and to is not JobState.RUNNING
        if not releases:
            changes = {**changes, RENEWED: firestore.SERVER_TIMESTAMP}
        progress = self._progress
        if progress is not self._written_progress and PROGRESS not in changes:
            changes = {**changes, PROGRESS: progress}  # rides on a write the holder makes anyway
        with self._lock:
            self._may_write(to)
            for _ in range(3):
                sent = time.monotonic()
                try:
                    self.job = self.store.commit(self.job, changes, to, **extra)
                    if PROGRESS in changes and changes[PROGRESS] is progress:
                        self._written_progress = progress
                    if releases:
                        self._released = True
                        self._stop.set()
                        self._wake.set()
                    else:
                        self._deadline = local_deadline(sent, self.ttl_seconds)
                    return self.job
                except StaleWrite:
                    self._refresh()  # raises LeaseLost when the lease is no longer ours
                    if self._cancelled and to not in (JobState.CANCELLED, JobState.FAILED):
                        raise Cancelled(message="the job was cancelled") from None
            raise LeaseLost(message="the job keeps changing under its lease holder")

    def commit_writes(self, writes: list[Write]) -> None:
        """Commit a stage's writes to other documents, fenced on the job's current version (`FencedBatch`)."""
        with self._lock:
            self._may_write(None)
            if time.monotonic() > self._deadline:
                raise LeaseLost(message="the lease expired before it could be renewed")
            for _ in range(3):
                try:
                    self.store.commit_fenced(self.job, writes)
                    return
                except StaleWrite:
                    self._refresh()
                    if self._cancelled:
                        raise Cancelled(message="the job was cancelled") from None
            raise LeaseLost(message="the job keeps changing under its lease holder")

    def _may_write(self, to: JobState | None) -> None:
        if self._lost:
            raise LeaseLost(message=self._lost)
        if self._released:
            # A heartbeat that fired just as the job finished must not put a lease back on it.
            raise LeaseLost(message="the lease was released")
        if self._cancelled and to not in (JobState.CANCELLED, JobState.FAILED):
            # A cancel the heartbeat already saw (and refreshed past) must win over the holder's next write,
            # exactly as when that write itself is refused; otherwise an accepted cancel could end "completed".
            raise Cancelled(message="the job was cancelled")

    def _cancel_seen(self, fencing: int, owner: str | None) -> None:
        """From the process's cancel listener: a cancel of this job was committed. Taken only for this lease (a
        snapshot about an earlier or later holder's run is not ours); the holder's next write is refused and ends
        the job, as when the heartbeat finds the cancel."""
        if fencing == self.job.fencing and owner == self.worker_id and not self._released:
            self._cancelled = True

    def _refresh(self) -> None:
        fresh = self.store.get(self.job.job_id)
        if (fresh is None or fresh.fencing != self.job.fencing or fresh.lease_owner != self.worker_id
                or fresh.state is not JobState.RUNNING):
            self._lost = "another worker or cleanup took the job"
            raise LeaseLost(message=self._lost)
        self.job = fresh
        self._cancelled = fresh.cancel_requested

    # The heartbeat ------------------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        next_beat = time.monotonic() + self.heartbeat_seconds
        while True:
            self._wake.wait(max(0.0, min(next_beat, self._stage_deadline) - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            if now > self._stage_deadline:
                self._stage_timed_out()
                return
            if now < next_beat:
                continue  # woken by a new stage's deadline: sleep again
            next_beat = now + self.heartbeat_seconds
            try:
                self.write({})
                self.renewals += 1
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

    def _stage_timed_out(self) -> None:
        """The stage is past its deadline and has not ended the attempt itself: it is hung. Renew no more, and
        end the attempt from here (the stage's thread, if it wakes, finds the lease released)."""
        if self._released or self._lost:
            return
        log(LOG, logging.ERROR, "stage timed out; ending the attempt", job_id=self.job.job_id, stage=self._stage,
            event=Event.STAGE_TIMED_OUT)
        if self.on_stage_timeout is None:
            return  # the lease lapses on its own; the next delivery or the cleanup takes over
        try:
            self.on_stage_timeout()
        except Exception as exc:  # noqa: BLE001 - the lease lapses anyway: the next delivery takes over
            log(LOG, logging.WARNING, "could not end the timed-out attempt", job_id=self.job.job_id, error=str(exc))
