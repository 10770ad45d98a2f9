"""Lease decisions (pure): what a delivered task should do with the job it names, and when a lease has lapsed.

A lease is (owner, fencing token, renewal time, TTL). The token grows with every acquisition, so a write fenced on
it (the job store fences on the document's update_time, which is stricter still) is refused once anyone else took
over. Whether a lease has lapsed is judged by **server time** only: the holder stamps `lease_renewed_at` with
Firestore's commit time, and whoever asks compares it with the `read_time` of its own read. No decision compares
two machines' clocks, so a worker or a cleanup whose clock runs ahead cannot take a live lease.
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
    renewed_at: datetime | None  # server time of the holder's last write
    ttl_seconds: float
    read_time: datetime | None  # server time of the read this view came from
    cancel_requested: bool = False


def decide_delivery(job: LeaseView, task_generation: int) -> Delivery:
    if job.state in TERMINAL:
        return Delivery.SKIP_DONE
    if task_generation < job.generation:
        return Delivery.SKIP_STALE
    if job.state is JobState.RUNNING and not lease_lapsed(job.renewed_at, job.ttl_seconds, job.read_time):
        return Delivery.BUSY
    return Delivery.ACQUIRE


def lease_lapsed(renewed_at: datetime | None, ttl_seconds: float, server_now: datetime | None) -> bool:
    """Whether a lease renewed at `renewed_at` (server time) has lapsed at `server_now` (server time too)."""
    if renewed_at is None:
        return True
    if server_now is None:  # no server time to judge by: assume the holder is alive (the safe side)
        return False
    return server_now - renewed_at >= timedelta(seconds=ttl_seconds)


def local_deadline(renewed_at_monotonic: float, ttl_seconds: float) -> float:
    """Until when (time.monotonic()) this worker may still trust its lease without asking Firestore.

    Measured from when the renewing write was *sent* (its server commit time, from which others measure the lease,
    comes later), less a margin for the two clocks' rates and for a request still in flight, so a worker that was
    paused (GC, SIGSTOP, a frozen VM) stops itself before another worker can have taken over."""
    return renewed_at_monotonic + ttl_seconds - lease_margin(ttl_seconds)


def lease_margin(ttl_seconds: float) -> float:
    return min(5.0, ttl_seconds * 0.1)
