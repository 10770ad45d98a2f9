"""What both clients do alike, proved once over the HTTP API and once direct (the `connect` fixture runs each test
in both modes) against the real emulators and the real processor."""

from __future__ import annotations

import pytest

import oncetask
from oncetask import (ConflictError, InvalidRequestError, JobState, NotFoundError, Submission, WaitTimeout)
from oncetask_dev import testjobs

from .conftest import Connect, Stack

KEY = "order-1234"


def test_a_duplicate_submit_gives_the_same_job_and_one_task(make_stack, connect: Connect) -> None:
    stack: Stack = make_stack(paused=True)
    client = connect(stack)
    first = client.submit("noop", {"note": "once"}, key=KEY)
    again = client.submit("noop", {"note": "once"}, key=KEY)
    assert isinstance(first, Submission) and first.status == "queued"
    assert (again.job_id, again.status, again.task_name) == (first.job_id, "already_queued", first.task_name)
    assert stack.tasks() == [first.task_name]


def test_submits_without_a_key_are_separate_jobs(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    assert client.submit("noop").job_id != client.submit("noop").job_id


def test_a_payload_model_instance_is_the_same_request_as_its_dict(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    submitted = client.submit(testjobs.noop, testjobs.NoopPayload(note="from a model"), key=KEY)
    job = client.get(submitted.job_id)
    assert (job.job_type, job.payload, job.state) == ("noop", {"note": "from a model"}, JobState.QUEUED)
    assert client.submit("noop", {"note": "from a model"}, key=KEY).job_id == submitted.job_id


def test_a_model_of_another_job_type_is_refused_before_anything_is_sent(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    with pytest.raises(TypeError, match="NoopPayload"):
        client.submit(testjobs.noop, testjobs.PipelinePayload())


def test_an_unknown_job_type_is_an_invalid_request_naming_the_job_type(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    with pytest.raises(InvalidRequestError) as refused:
        client.submit("no.such.type", {})
    assert (refused.value.status, refused.value.code, refused.value.field) == (422, "INVALID_ARGUMENT", "job_type")
    assert "no.such.type" in refused.value.message


def test_a_payload_its_model_refuses_names_the_payload_field(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    with pytest.raises(InvalidRequestError) as refused:
        client.submit("test.pipeline", {"sleep_ms": -1})
    assert (refused.value.status, refused.value.field) == (422, "payload.sleep_ms")


def test_a_key_longer_than_the_api_allows_names_the_key(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    with pytest.raises(InvalidRequestError) as refused:
        client.submit("noop", {}, key="k" * 257)
    assert (refused.value.status, refused.value.field) == (422, "idempotency_key")


def test_a_body_over_the_apis_limit_is_refused_as_too_large(make_stack, connect: Connect) -> None:
    stack = make_stack(paused=True, max_body_bytes=512)
    with pytest.raises(InvalidRequestError) as refused:
        connect(stack).submit("noop", {"note": "x" * 900}, key=KEY)
    assert (refused.value.status, refused.value.code, refused.value.field) == (413, "PAYLOAD_TOO_LARGE", "body")
    assert stack.tasks() == []


def test_text_no_utf8_store_accepts_is_refused_as_invalid_json(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    with pytest.raises(InvalidRequestError) as refused:
        client.submit("noop", {"note": "half a pair \ud800"})
    assert (refused.value.status, refused.value.code, refused.value.field) == (400, "INVALID_JSON", "body")


def test_a_payload_that_is_no_json_is_refused_before_anything_is_sent(make_stack, connect: Connect) -> None:
    stack = make_stack(paused=True)
    with pytest.raises(InvalidRequestError) as refused:
        connect(stack).submit("noop", {"note": float("nan")})
    assert (refused.value.code, refused.value.field) == ("INVALID_JSON", "payload")
    assert stack.tasks() == []


def test_a_job_that_does_not_exist_is_not_found(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    for job_id in ("0" * 32, "not-a-job-id", "../jobs"):
        with pytest.raises(NotFoundError) as missing:
            client.get(job_id)
        assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
    with pytest.raises(NotFoundError):
        client.cancel("0" * 32)
    with pytest.raises(NotFoundError):
        client.retry("0" * 32)


def test_a_key_reused_with_another_payload_is_a_conflict(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    client.submit("noop", {"note": "first"}, key=KEY)
    with pytest.raises(ConflictError) as conflict:
        client.submit("noop", {"note": "second"}, key=KEY)
    assert (conflict.value.status, conflict.value.code) == (409, "CONFLICT")
    assert "different payload" in conflict.value.message


def test_wait_returns_the_job_once_it_has_finished(make_stack, connect: Connect) -> None:
    client = connect(make_stack())
    submitted = client.submit(testjobs.noop, testjobs.NoopPayload(note="done"), key=KEY)
    job = client.wait(submitted.job_id, timeout=30, poll=0.05)
    assert job.state is JobState.COMPLETED
    assert (job.stages, job.completed_stages, job.stage_outputs) == (["noop"], ["noop"], {"noop": {"note": "done"}})


def test_wait_gives_up_with_a_timeout_error_carrying_the_job(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    submitted = client.submit("noop", key=KEY)
    with pytest.raises(WaitTimeout) as timed_out:
        client.wait(submitted.job_id, timeout=0.2, poll=0.05)
    assert isinstance(timed_out.value, TimeoutError)
    assert (timed_out.value.job.job_id, timed_out.value.job.state) == (submitted.job_id, JobState.QUEUED)
    assert submitted.job_id in str(timed_out.value) and "queued" in str(timed_out.value)


def test_list_pages_through_the_callers_jobs_newest_first(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    submitted = [client.submit("noop", {"note": str(i)}, key=f"job-{i}").job_id for i in range(5)]
    first = client.list(limit=2)
    assert [j.job_id for j in first.jobs] == submitted[:-3:-1] and first.next_cursor
    second = client.list(limit=2, cursor=first.next_cursor)
    third = client.list(limit=2, cursor=second.next_cursor)
    assert [j.job_id for j in (*first.jobs, *second.jobs, *third.jobs)] == submitted[::-1]
    assert third.next_cursor is None
    assert [j.job_id for j in client.iter_jobs(page_size=2)] == submitted[::-1]
    client.cancel(submitted[1])
    assert [j.job_id for j in client.iter_jobs(JobState.CANCELLED)] == [submitted[1]]
    assert [j.job_id for j in client.list("queued", limit=10).jobs] == [submitted[i] for i in (4, 3, 2, 0)]


def test_list_refuses_a_state_limit_or_cursor_the_api_refuses(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    for arguments, field in (({"state": "sleeping"}, "state"), ({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                             ({"cursor": "somewhere"}, "cursor")):
        with pytest.raises(InvalidRequestError) as refused:
            client.list(**arguments)
        assert (refused.value.status, refused.value.field) == (422, field), arguments


def test_a_failed_job_is_retried_from_its_failed_stage_to_completion(make_stack, connect: Connect) -> None:
    client = connect(make_stack())
    payload = {"fail_stage": "work", "fail_kind": "permanent", "fail_times": 1}
    submitted = client.submit(testjobs.test_pipeline, payload, key=KEY)
    failed = client.wait(submitted.job_id, timeout=30, poll=0.05)
    assert failed.state is JobState.FAILED and failed.errors[-1].stage == "work"
    retried = client.retry(submitted.job_id)
    assert retried.status == "queued" and retried.task_name != submitted.task_name
    completed = client.wait(submitted.job_id, timeout=30, poll=0.05)
    assert completed.state is JobState.COMPLETED and completed.generation == 2
    with pytest.raises(ConflictError, match="only failed jobs"):
        client.retry(submitted.job_id)
    with pytest.raises(ConflictError, match="already completed"):
        client.cancel(submitted.job_id)


def test_cancel_ends_a_waiting_job_and_a_second_cancel_is_harmless(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    submitted = client.submit("noop", key=KEY)
    assert client.cancel(submitted.job_id) == Submission(job_id=submitted.job_id, status="cancelled",
                                                         task_name=submitted.task_name)
    assert client.wait(submitted.job_id, timeout=5).state is JobState.CANCELLED
    assert client.cancel(submitted.job_id).status == "already_cancelled"
    with pytest.raises(ConflictError):
        client.retry(submitted.job_id)
    assert client.submit("noop", key=KEY).status == "already_cancelled"


def test_the_client_names_are_public() -> None:
    for name in ("Client", "DirectClient", "Submission", "JobView", "JobList", "WaitTimeout", "ApiError",
                 "InvalidRequestError", "UnauthenticatedError", "PermissionDeniedError", "NotFoundError",
                 "ConflictError", "UnavailableError"):
        assert name in oncetask.__all__ and hasattr(oncetask, name), name
    for error in (oncetask.InvalidRequestError, oncetask.NotFoundError, oncetask.ConflictError,
                  oncetask.UnauthenticatedError, oncetask.PermissionDeniedError, oncetask.UnavailableError):
        assert issubclass(error, oncetask.ApiError)


def test_a_delayed_submit_is_scheduled_and_a_bad_delay_names_its_field(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    submitted = client.submit("noop", key=KEY, delay_seconds=600)
    assert submitted.status == "scheduled" and client.get(submitted.job_id).run_at is not None
    with pytest.raises(InvalidRequestError) as refused:
        client.submit("noop", key="another", delay_seconds=-5)
    assert refused.value.field == "delay_seconds"


def test_a_callback_to_a_follow_up_job_is_accepted_and_an_unknown_one_refused(make_stack, connect: Connect) -> None:
    client = connect(make_stack(paused=True))
    with pytest.raises(InvalidRequestError) as refused:
        client.submit("noop", key=KEY, callback=oncetask.Callback(job_type="no.such.type"))
    assert refused.value.field == "callback.job_type"
