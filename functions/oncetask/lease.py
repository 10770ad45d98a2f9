"""Lease decisions (pure): what a delivered task should do with the job it names, and when a lease has lapsed.

A lease is (owner, fencing token, expiry). The token grows with every acquisition, so a write fenced on it (the
job store fences on the document's update_time, which is stricter still) is refused once anyone else took over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .states import TERMINAL, JobState


class Delivery(StrEnum):
    ACQUIRE = "acquire"  # take the lease and run
    SKIP_DONE = "skip_done"  # terminal already: answer 2xx, do nothing
    SKIP_STALE = "skip_stale"  # the task belongs to an older generation: a newer task owns the job
    BUSY = "busy"  # another worker holds a live lease: answer non-2xx so Cloud Tasks asks again later


@dataclass(frozen=True)
class LeaseView:
    state: JobState
    generation: int
    lease_expires_at: datetime | None
    cancel_requested: bool = False


def decide_delivery(job: LeaseView, task_generation: int, now: datetime) -> Delivery:
    if job.state in TERMINAL:
        return Delivery.SKIP_DONE
    if task_generation < job.generation:
        return Delivery.SKIP_STALE
    if job.state is JobState.RUNNING and not lease_lapsed(job.lease_expires_at, now):
        return Delivery.BUSY
    return Delivery.ACQUIRE


def lease_lapsed(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or expires_at <= now


def lease_expiry(now: datetime, ttl_seconds: float) -> datetime:
    return now + timedelta(seconds=ttl_seconds)


def local_deadline(renewed_at_monotonic: float, ttl_seconds: float) -> float:
    """Until when (time.monotonic()) this worker may still trust its lease without asking Firestore.

    Measured from when the renewing write was *sent*, less a margin for clock drift between machines, so a worker
    that was paused (GC, SIGSTOP, a frozen VM) stops itself before another worker can have taken over."""
    margin = min(5.0, ttl_seconds * 0.1)
    return renewed_at_monotonic + ttl_seconds - margin
