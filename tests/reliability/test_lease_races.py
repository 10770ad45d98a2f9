"""Races inside one lease holder, replayed step by step against the stack's Firestore (found by the scenarios,
where they happen only now and then)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from google.cloud.firestore import DELETE_FIELD

from oncetask.errors import Cancelled, LeaseLost
from oncetask.jobstore import JobStore
from oncetask.leasekeeper import LeaseKeeper
from oncetask.states import JobState

from .conftest import unique
from .invariants import Observer


def held_job(store: JobStore) -> tuple[str, LeaseKeeper]:
    """A running job and its holder's keeper, whose heartbeat thread is never started (the test plays it)."""
    job_id = unique("lease-race")
    now = datetime.now(timezone.utc)
    store.create(job_id, {"job_type": "test.pipeline", "state": "queued", "generation": 1, "attempts": 0,
                          "fencing": 0, "checkpoints": {}, "errors": [], "created_at": now, "updated_at": now})
    job = store.get(job_id)
    assert job is not None
    job = store.update(job, {"attempts": 1, "fencing": 1, "lease_owner": "me",
                             "lease_renewed_at": now, "lease_ttl": 60.0}, JobState.RUNNING)
    return job_id, LeaseKeeper(store, job, "me", 60.0, 3600.0, time.monotonic())


def test_a_heartbeat_firing_as_the_job_completes_puts_no_lease_back(observer: Observer) -> None:
    store = JobStore(observer.db)
    job_id, keeper = held_job(store)
    keeper.write({"lease_owner": DELETE_FIELD, "lease_renewed_at": DELETE_FIELD}, JobState.COMPLETED)
    with pytest.raises(LeaseLost):  # the heartbeat was already past its wait: its renewal must not land
        keeper.write({})
    done = store.get(job_id)
    assert done is not None
    assert (done.state, done.lease_owner, done.lease_renewed_at) == (JobState.COMPLETED, None, None)


def test_a_cancel_first_seen_by_the_heartbeat_still_stops_the_completing_write(observer: Observer) -> None:
    store = JobStore(observer.db)
    job_id, keeper = held_job(store)
    now = datetime.now(timezone.utc)

    running = store.get(job_id)
    assert running is not None
    store.update(running, {"cancel_requested": True})  # the API accepts a cancel: "cancel_requested"
    with pytest.raises(Cancelled):  # a heartbeat's renewal is refused; it re-reads and sees the cancel
        keeper.write({})
    with pytest.raises(Cancelled):  # the holder then tries to complete: the accepted cancel must win
        keeper.write({"lease_owner": None}, JobState.COMPLETED)
    assert store.get(job_id).state is JobState.RUNNING  # nothing completed; the processor goes on to cancel
