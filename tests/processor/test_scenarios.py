"""Scenario tests: the real API, the Cloud Tasks emulator dispatching to the real handler, Firestore and Storage
emulators underneath."""

from __future__ import annotations

from fixtures.tasks import wait_until
from oncetask.job import FAILED_TASKS, RESULTS
from oncetask.states import JobState

from .conftest import Stack


def test_submitted_three_stage_job_runs_to_completion_with_its_result(stack: Stack) -> None:
    job_id = stack.submit_ok(payload={"sleep_ms": 0}, key="happy")
    job = stack.wait_state(job_id, JobState.COMPLETED)
    assert sorted(job.checkpoints) == ["finish", "prepare", "work"]
    result = stack.doc(RESULTS, job_id)
    assert result is not None and sorted(result["outputs"]) == ["finish", "prepare", "work"]
    assert stack.artifacts(job_id) == [f"jobs/{job_id}/{s}/{s}.json" for s in ("finish", "prepare", "work")]
    assert job.expire_at is not None and job.lease_owner is None


def test_happy_path_needs_at_most_three_plus_stages_firestore_calls(stack: Stack) -> None:
    stages = 3
    assert stack.firestore_calls() == {}  # a fresh project: every call counted below is the product's
    job_id = stack.submit_ok(payload={}, key="count-me")
    # Wait on the queue, not on Firestore, so the test's own polling is not counted: the task is gone once
    # the handler answered 2xx.
    wait_until(lambda: stack.tasks() == [], message="the task to be done")
    calls = stack.firestore_calls()
    used = sum(calls.values())
    print(f"firestore calls for a {stages}-stage job: {used} ({calls})")
    assert stack.job(job_id).state is JobState.COMPLETED
    assert used <= 3 + stages
