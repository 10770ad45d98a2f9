"""Scenario tests: the real API, the Cloud Tasks emulator dispatching to the real handler, Firestore and Storage
emulators underneath."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from unittest.mock import ANY

import pytest

from fixtures.tasks import wait_until
from oncetask.job import FAILED_TASKS, RESULTS
from oncetask.processor import TaskDelivery
from oncetask.states import JobState

from .conftest import Stack


def test_submitted_three_stage_job_runs_to_completion_with_its_result(stack: Stack) -> None:
    job_id = stack.submit_ok(payload={"sleep_ms": 0}, key="happy")
    job = stack.wait_state(job_id, JobState.COMPLETED)
    assert sorted(job.checkpoints) == ["finish", "prepare", "work"]
    result = stack.doc(RESULTS, job_id)
    assert result is not None and sorted(result["outputs"]) == ["finish", "prepare", "work"]
    assert [name.split("/")[2] for name in stack.artifacts(job_id)] == ["finish", "prepare", "work"]
    assert stack.artifact_problems(job_id) == []
    assert job.expire_at is not None and job.lease_owner is None


@pytest.mark.parametrize("job_type, stages", [("noop", 1), ("test.pipeline", 3)])
def test_happy_path_needs_at_most_three_plus_stages_firestore_calls(stack: Stack, job_type: str, stages: int) -> None:
    assert stack.firestore_calls() == {}  # a fresh project: every call counted below is the product's
    job_id = stack.submit_ok(job_type, {}, key="count-me")
    # Wait on the queue, not on Firestore, so the test's own polling is not counted: the task is gone once
    # the handler answered 2xx.
    wait_until(lambda: stack.tasks() == [], message="the task to be done")
    calls = stack.firestore_calls()
    used = sum(calls.values())
    print(f"firestore calls for a {stages}-stage job: {used} {calls}")
    assert stack.job(job_id).state is JobState.COMPLETED
    assert used <= 3 + stages
    assert stack.listens() <= 1  # the handler's one cancel listener, shared by every job it runs


def test_rapid_duplicate_submissions_create_one_job_and_one_task(make_stack) -> None:
    stack = make_stack(paused=True)  # keep the task in the queue so it can be counted
    body = {"job_type": "test.pipeline", "payload": {"sleep_ms": 0}, "idempotency_key": "dup"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: stack.api_client.post("/jobs", json=body), range(8)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.get_json()["job_id"] for a in answers}) == 1
    statuses = sorted(a.get_json()["status"] for a in answers)
    assert statuses == ["already_queued"] * 7 + ["queued"]
    assert len(stack.tasks()) == 1


def test_task_carries_the_configured_dispatch_deadline(make_stack) -> None:
    stack = make_stack(paused=True, dispatch_deadline_seconds=900.0)
    stack.submit_ok(key="deadline")
    [name] = stack.tasks()
    task = stack.services.queue.client.get_task(name=name)
    assert task.dispatch_deadline.total_seconds() == 900.0


def test_same_idempotency_key_with_a_different_payload_is_a_conflict(stack: Stack) -> None:
    stack.submit_ok(payload={"sleep_ms": 1}, key="k")
    answer = stack.submit(payload={"sleep_ms": 2}, key="k")
    assert answer.status_code == 409 and "different payload" in answer.get_json()["error"]["message"]


def test_resubmitting_a_completed_job_answers_already_completed(stack: Stack) -> None:
    job_id = stack.submit_ok(key="again")
    stack.wait_state(job_id, JobState.COMPLETED)
    answer = stack.submit(key="again")
    assert answer.get_json() == {"job_id": job_id, "status": "already_completed", "task_name": ANY}


def test_redelivered_task_while_running_does_not_run_twice(stack: Stack) -> None:
    job_id = stack.submit_ok(payload={"sleep_ms": 400}, key="busy")
    job = stack.wait_state(job_id, JobState.RUNNING)
    outcome = stack.services.processor.handle(TaskDelivery(job_id, job.generation, "redelivered", 0))
    assert (outcome.status, outcome.outcome) == (409, "busy")  # not 2xx: a retry takes over if the worker dies
    job = stack.wait_state(job_id, JobState.COMPLETED)
    assert job.attempts == 1 and job.fencing == 1


def test_completed_job_is_skipped_on_redelivery_without_writing(stack: Stack) -> None:
    job_id = stack.submit_ok(key="done")
    job = stack.wait_state(job_id, JobState.COMPLETED)
    commits = stack.firestore_calls().get("Commit", 0)
    outcome = stack.services.processor.handle(TaskDelivery(job_id, job.generation, "again", 1))
    assert (outcome.status, outcome.outcome) == (200, "already_completed")
    assert stack.firestore_calls().get("Commit", 0) == commits
    assert stack.job(job_id).update_time == job.update_time


def test_transient_failure_is_retried_and_then_succeeds(stack: Stack) -> None:
    job_id = stack.submit_ok(payload={"fail_times": 1, "fail_kind": "retryable"}, key="flaky")
    job = stack.wait_state(job_id, JobState.COMPLETED)
    assert job.attempts == 2
    assert [(e["code"], e["stage"], e["retryable"], e["attempt"]) for e in job.errors] == \
        [("INJECTED_FAILURE", "work", True, 1)]
    assert stack.doc(FAILED_TASKS, job_id) is None


def test_permanent_failure_fails_at_once_with_its_error(stack: Stack) -> None:
    job_id = stack.submit_ok(payload={"fail_times": 1, "fail_kind": "permanent"}, key="bad")
    job = stack.wait_state(job_id, JobState.FAILED)
    assert job.attempts == 1
    assert [(e["code"], e["stage"], e["retryable"]) for e in job.errors] == [("INJECTED_FAILURE", "work", False)]
    dead = stack.doc(FAILED_TASKS, job_id)
    assert dead is not None and dead["last_error"]["code"] == "INJECTED_FAILURE" and dead["expire_at"]
    assert stack.doc(RESULTS, job_id) is None


def test_retries_exhausted_end_failed_with_a_dead_letter_record(stack: Stack) -> None:
    job_id = stack.submit_ok(payload={"fail_times": 10, "fail_kind": "retryable"}, key="hopeless")
    job = stack.wait_state(job_id, JobState.FAILED)
    assert job.attempts == stack.settings.max_attempts == 3
    assert [e["attempt"] for e in job.errors] == [1, 2, 3]
    dead = stack.doc(FAILED_TASKS, job_id)
    assert dead is not None and len(dead["errors"]) == 3 and dead["job_type"] == "test.pipeline"
    wait_until(lambda: stack.tasks() == [], message="the last attempt to be answered 2xx")


def test_manual_retry_resumes_at_the_failed_stage(stack: Stack) -> None:
    job_id = stack.submit_ok(payload={"fail_times": 1, "fail_kind": "permanent"}, key="resume")
    failed = stack.wait_state(job_id, JobState.FAILED)
    assert sorted(failed.checkpoints) == ["prepare"]
    answer = stack.api_client.post(f"/jobs/{job_id}/retry")
    assert answer.status_code == 202 and answer.get_json()["status"] == "queued"
    job = stack.wait_state(job_id, JobState.COMPLETED)
    assert job.checkpoints["prepare"] == failed.checkpoints["prepare"]  # not run again
    assert job.checkpoints["work"]["attempt"] == 2 and job.generation == 2
    assert stack.doc(FAILED_TASKS, job_id) is None


def test_retry_of_a_job_that_did_not_fail_is_a_conflict(stack: Stack) -> None:
    job_id = stack.submit_ok(key="fine")
    stack.wait_state(job_id, JobState.COMPLETED)
    assert stack.api_client.post(f"/jobs/{job_id}/retry").status_code == 409


def test_a_stage_longer_than_the_lease_keeps_it_by_heartbeat(make_stack) -> None:
    stack = make_stack(lease_ttl_seconds=1.0)  # renewed every third of it; shorter is at the mercy of a loaded machine
    job_id = stack.submit_ok(payload={"sleep_ms": 1200}, key="long")
    job = stack.wait_state(job_id, JobState.COMPLETED)
    assert (job.attempts, job.fencing, job.errors) == (1, 1, [])


def test_transient_firestore_errors_do_not_fail_jobs(make_stack, start_firestore_emulator) -> None:
    """A quarter of all Firestore calls fail with UNAVAILABLE: in-attempt retries (and at worst a Cloud Tasks
    retry) absorb them, and every job completes."""
    flaky = start_firestore_emulator("--fault", "UNAVAILABLE:0.25", "--fault-seed", "7")
    stack = make_stack(FIRESTORE_EMULATOR_HOST=flaky.host)
    job_ids = [stack.submit_ok(payload={}, key=f"flaky-firestore-{n}") for n in range(5)]
    for job_id in job_ids:
        job = stack.wait_state(job_id, JobState.COMPLETED, JobState.FAILED)
        assert job.state is JobState.COMPLETED, job.errors
        assert all(e["retryable"] for e in job.errors)


def test_a_checkpointed_stage_whose_artifact_vanished_runs_again(stack: Stack) -> None:
    job_id = stack.submit_ok(payload={"fail_times": 1, "fail_kind": "permanent"}, key="vanished")
    failed = stack.wait_state(job_id, JobState.FAILED)
    (vanished,) = stack.named_artifacts(job_id, {"prepare": failed.checkpoints["prepare"]})
    stack.services.bucket.blob(vanished).delete()
    assert stack.api_client.post(f"/jobs/{job_id}/retry").status_code == 202
    job = stack.wait_state(job_id, JobState.COMPLETED)
    assert job.checkpoints["prepare"]["attempt"] == 2 != failed.checkpoints["prepare"]["attempt"]
    assert stack.artifact_problems(job_id) == [] and vanished not in stack.artifacts(job_id)
