"""What an operator sees of a job, through the real entry points: errors that explain themselves (type, traceback,
bugs apart from bad input, Error Reporting's format), a stage's progress, a cancel that reaches a long stage at
once, and one trace from the submission to every delivery."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

import oncetask
from fixtures.tasks import wait_until
from oncetask.job import FAILED_TASKS
from oncetask.leasekeeper import LeaseKeeper
from oncetask.logs import ERROR_EVENT_TYPE, JsonFormatter
from oncetask.processor import TaskDelivery
from oncetask.stages import Context
from oncetask.states import JobState

from .conftest import Stack


class Empty(BaseModel):
    pass


class Gate(BaseModel):
    gate: str
    seconds: float = 30.0


# Test-only gates a stage waits on (the handler runs in this process): set by the test when it has seen enough.
GATES: dict[str, threading.Event] = {}
CANCELS_SEEN: dict[str, float] = {}  # gate -> when the stage's check() raised Cancelled (monotonic)


ops = oncetask.App("ops-tests")
buggy = ops.job("test.buggy", payload=Empty)


@buggy.stage
def lookup(ctx: Context[Empty]) -> dict:
    row: dict[str, Any] = {}
    return {"value": row["missing"]}


refusing = ops.job("test.refusing", payload=Empty)


@refusing.stage
def parse(ctx: Context[Empty]) -> dict:
    raise ValueError("width must be positive, got -3")


reporting = ops.job("test.reporting", payload=Gate)


@reporting.stage
def report(ctx: Context[Gate]) -> dict:
    ctx.progress(0.25, "a quarter")
    ctx.progress(0.5, "halfway")
    deadline = time.monotonic() + ctx.payload.seconds
    while not GATES[ctx.payload.gate].is_set() and time.monotonic() < deadline:
        ctx.check()
        time.sleep(0.01)
    return {"done": True}


chatty = ops.job("test.chatty", payload=Empty)


@chatty.stage
def chatter(ctx: Context[Empty]) -> dict:
    for n in range(1000):
        ctx.progress(n / 1000, f"item {n}")
    return {"items": 1000}


quiet = ops.job("test.quiet", payload=Empty)


@quiet.stage
def hush(ctx: Context[Empty]) -> dict:
    return {"items": 1000}


long_stage = ops.job("test.long", payload=Gate)


@long_stage.stage
def grind(ctx: Context[Gate]) -> dict:
    GATES[ctx.payload.gate].set()  # the test may cancel now: the stage runs
    deadline = time.monotonic() + ctx.payload.seconds
    try:
        while time.monotonic() < deadline:
            ctx.check()
            time.sleep(0.01)
    except oncetask.Cancelled:
        CANCELS_SEEN[ctx.payload.gate] = time.monotonic()
        raise
    return {"ground": True}


@pytest.fixture
def ops_stack(make_stack) -> Stack:
    return make_stack(apps=(ops,))


@pytest.fixture
def log_lines() -> Iterator[list[dict[str, Any]]]:
    """Every JSON line the oncetask loggers of this process write while the test runs (the API and the handler run
    here), as Cloud Logging would receive them."""
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(self.format(record)))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("oncetask")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


# Errors that explain themselves ----------------------------------------------------------------------------------

def test_a_key_error_in_a_stage_is_a_bug_that_fails_at_once_with_its_type_and_traceback(
        ops_stack: Stack, log_lines: list[dict[str, Any]]) -> None:
    stack = ops_stack
    job_id = stack.submit_ok("test.buggy", {}, key="bug")
    job = stack.wait_state(job_id, JobState.FAILED)
    assert job.attempts == 1  # a bug does not heal by retrying: no second attempt
    view = stack.api_client.get(f"/jobs/{job_id}").get_json()
    error = view["errors"][-1]
    assert (error["code"], error["retryable"], error["type"], error["stage"]) == ("BUG", False, "KeyError", "lookup")
    assert error["message"].startswith("KeyError: 'missing'") and "programming error" in error["message"]
    assert error["traceback"].startswith("Traceback (most recent call last):")
    assert 'in lookup\n    return {"value": row["missing"]}' in error["traceback"]
    assert error["traceback"].rstrip().endswith("KeyError: 'missing'")
    dead_letter = stack.doc(FAILED_TASKS, job_id)
    assert dead_letter is not None and dead_letter["last_error"]["type"] == "KeyError"
    # The log line is an Error Reporting event: its stack groups it, and it names the job.
    (event,) = [line for line in log_lines if line.get("event") == "stage.failed" and line.get("job_id") == job_id]
    assert event["@type"] == ERROR_EVENT_TYPE and event["serviceContext"]["service"]
    assert event["stack_trace"].startswith("Traceback") and "KeyError: 'missing'" in event["stack_trace"]
    assert (event["code"], event["error_type"], event["severity"], event["job_type"]) == \
        ("BUG", "KeyError", "ERROR", "test.buggy")


def test_a_value_error_raised_on_purpose_is_bad_input_not_a_bug(ops_stack: Stack) -> None:
    stack = ops_stack
    job_id = stack.submit_ok("test.refusing", {}, key="bad-input")
    stack.wait_state(job_id, JobState.FAILED)
    error = stack.api_client.get(f"/jobs/{job_id}").get_json()["errors"][-1]
    assert (error["code"], error["type"], error["retryable"]) == ("INVALID_ARGUMENT", "ValueError", False)
    assert error["message"] == "width must be positive, got -3"
    assert "raise ValueError" in error["traceback"]


def test_a_transient_failure_keeps_its_type_and_is_retried(ops_stack: Stack) -> None:
    stack = ops_stack
    job_id = stack.submit_ok("test.pipeline", {"fail_times": 1}, key="transient")
    job = stack.wait_state(job_id, JobState.COMPLETED)
    (error,) = job.errors
    assert (error["code"], error["retryable"], error["type"]) == \
        ("INJECTED_FAILURE", True, "oncetask.errors.RetryableError")


# Progress --------------------------------------------------------------------------------------------------------

def test_a_stages_progress_shows_in_the_jobs_view_and_goes_when_it_completes(ops_stack: Stack) -> None:
    stack = ops_stack
    GATES["progress"] = threading.Event()
    job_id = stack.submit_ok("test.reporting", {"gate": "progress"}, key="progress")

    def progress() -> dict[str, Any] | None:
        return stack.api_client.get(f"/jobs/{job_id}").get_json()["progress"]

    # The latest value only, carried by a heartbeat (every third of the 1 s test lease).
    shown = wait_until(lambda: (p := progress()) and p["fraction"] == 0.5 and p, message="the progress to show")
    assert (shown["stage"], shown["message"]) == ("report", "halfway")
    GATES["progress"].set()
    stack.wait_state(job_id, JobState.COMPLETED)
    assert progress() is None


def test_progress_costs_no_write_of_its_own(make_stack) -> None:
    # A 60 s lease: its heartbeat (every 20 s) never fires during these short stages, so any write beyond a job's
    # floor would be progress's own.
    stack = make_stack(apps=(ops,), lease_ttl_seconds=60.0)

    def commits_for(job_type: str) -> int:
        before = stack.firestore_calls().get("Commit", 0)
        job_id = stack.submit_ok(job_type, {}, key=job_type)
        wait_until(lambda: stack.tasks() == [], message="the task to be done")
        assert stack.job(job_id).state is JobState.COMPLETED
        return stack.firestore_calls().get("Commit", 0) - before

    assert commits_for("test.chatty") == commits_for("test.quiet")  # 1,000 progress calls, not one more commit


def _unstarted_keeper(fencing: int = 1, worker: str = "me") -> LeaseKeeper:
    """A keeper never started (no heartbeat, no store): for its pure decisions."""
    job = type("Held", (), {"job_id": "j", "fencing": fencing})()
    return LeaseKeeper(None, job, worker, 60, 20, time.monotonic())  # type: ignore[arg-type]


def test_progress_refuses_what_is_not_a_fraction() -> None:
    keeper = _unstarted_keeper()
    keeper.report_progress(7, "clamped")
    assert keeper._progress is not None and keeper._progress["fraction"] == 1.0
    with pytest.raises(TypeError):
        keeper.report_progress("half")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        keeper.report_progress(float("nan"))


# Prompt cancel ---------------------------------------------------------------------------------------------------

def test_a_cancel_reaches_a_long_stage_long_before_its_next_heartbeat(make_stack) -> None:
    # A 10-minute lease: the heartbeat, the only other way a worker hears of a cancel, comes every 200 s. The stage
    # runs up to 120 s; the job must end cancelled within the wait below, so the cancel came through the listener.
    stack = make_stack(apps=(ops,), lease_ttl_seconds=600.0)
    gate = "cancel"
    GATES[gate] = threading.Event()
    job_id = stack.submit_ok("test.long", {"gate": gate, "seconds": 120}, key="long")
    GATES[gate].wait(20)
    stack.wait_state(job_id, JobState.RUNNING)
    asked = time.monotonic()
    assert stack.api_client.post(f"/jobs/{job_id}/cancel").get_json()["status"] == "cancel_requested"
    job = stack.wait_state(job_id, JobState.CANCELLED, timeout=30)
    latency = CANCELS_SEEN[gate] - asked
    print(f"cancel reached the stage {latency * 1000:.0f} ms after the request")
    assert latency < stack.settings.effective_heartbeat_seconds  # not the heartbeat's doing
    assert job.current_stage == "grind" and stack.listens() >= 1


def test_a_cancel_listener_that_cannot_reach_firestore_reconnects_at_a_bounded_rate(make_stack, grpc_gate,
                                                                                   firestore_emulator) -> None:
    # Firestore's client reopens a listener at once after every recoverable error: against a Firestore the worker
    # cannot reach (a lost network, an outage) that is a busy loop of new streams and threads, which took a test
    # process to 1,300 threads. The job itself goes on: the heartbeat still brings cancels.
    stack = make_stack(paused=True)
    gate = grpc_gate(firestore_emulator.host)
    refused = gate.fail(lambda method, request: method == "Listen")
    worker = stack.services_with(firestore_emulator_host=gate.host).processor
    job_id = stack.submit_ok(payload={"sleep_ms": 1000}, key="no-listen")
    assert worker.handle(TaskDelivery(job_id, 1, "t", 0)).outcome == "completed"  # three stages of 1 s
    assert 1 <= refused.seen <= 3, f"{refused.seen} attempts to listen in 3 s"


def test_a_cancel_notice_about_another_lease_is_ignored() -> None:
    keeper = _unstarted_keeper(fencing=4, worker="me")
    keeper._cancel_seen(3, "me")  # an earlier run's
    keeper._cancel_seen(4, "someone else")
    keeper.check()  # nothing raised: neither was this lease's
    keeper._cancel_seen(4, "me")
    with pytest.raises(oncetask.Cancelled):
        keeper.check()


# One trace per job -----------------------------------------------------------------------------------------------

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_every_line_of_a_job_carries_the_trace_of_its_submission(ops_stack: Stack,
                                                                  log_lines: list[dict[str, Any]]) -> None:
    stack = ops_stack
    answer = stack.api_client.post(
        "/jobs", json={"job_type": "test.pipeline", "payload": {"fail_times": 1}, "idempotency_key": "traced"},
        headers={"X-Cloud-Trace-Context": f"{TRACE}/1;o=1"})
    job_id = answer.get_json()["job_id"]
    job = stack.wait_state(job_id, JobState.COMPLETED)
    assert job.trace_id == TRACE and job.attempts == 2  # two deliveries: the retry of a transient failure
    assert stack.api_client.get(f"/jobs/{job_id}").get_json()["trace_id"] == TRACE
    mine = [line for line in log_lines if line.get("job_id") == job_id]
    expected = f"projects/{stack.settings.project_id}/traces/{TRACE}"
    assert {line.get("logging.googleapis.com/trace") for line in mine} == {expected}, \
        [line for line in mine if line.get("logging.googleapis.com/trace") != expected]
    messages = [line["message"] for line in mine]
    assert messages.count("lease acquired") == 2 and "job submitted" in messages and "job completed" in messages


def test_a_submission_without_trace_headers_gets_a_trace_of_its_own(ops_stack: Stack) -> None:
    stack = ops_stack
    first, second = (stack.job(stack.submit_ok("noop", {}, key=f"untraced-{n}")).trace_id for n in range(2))
    assert first and second and first != second and len(first) == 32


def test_children_and_next_stage_tasks_keep_the_parents_trace(make_stack) -> None:
    stack = make_stack(paused=True)
    answer = stack.api_client.post("/jobs", json={"job_type": "test.fanout", "payload": {"parts": 2},
                                                  "idempotency_key": "tree"},
                                   headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"})
    parent = answer.get_json()["job_id"]
    client = stack.services.queue.client
    from google.cloud import tasks_v2

    def headers_of_tasks() -> list[dict[str, str]]:
        return [dict(t.http_request.headers) for q in stack.queues
                for t in client.list_tasks(request={"parent": q, "response_view": tasks_v2.Task.View.FULL})]

    (task_headers,) = headers_of_tasks()
    assert task_headers["traceparent"].startswith(f"00-{TRACE}-")
    assert task_headers["X-Cloud-Trace-Context"].startswith(f"{TRACE}/")
    stack.resume()
    stack.wait_state(parent, JobState.COMPLETED)
    children = [stack.job(child_id) for child_id in _children_of(stack, parent)]
    assert len(children) == 2 and {child.trace_id for child in children} == {TRACE}


def _children_of(stack: Stack, parent: str) -> list[str]:
    from oncetask.children import child_ids

    return child_ids(stack.job(parent))


# The cleanup's queue figures (what the oldest-task-age alert reads) --------------------------------------------

def test_the_cleanup_logs_each_queues_depth_and_oldest_task_age(make_stack, tasks_emulator, task_target,
                                                                 log_lines: list[dict[str, Any]]) -> None:
    from .conftest import mint_token

    stack = make_stack(paused=True)
    stack.submit_ok("noop", {}, key="waiting")
    token = mint_token(tasks_emulator, task_target, stack.settings.scheduler_service_account,
                       stack.settings.cleanup_audience)
    assert stack.cleanup(Authorization=token).status_code == 200
    figures = {line["queue"]: line for line in log_lines if line.get("event") == "queue.stats"}
    assert set(figures) == {*(q.rsplit("/", 1)[1] for q in stack.queues), stack.settings.callback_queue}
    default = figures[stack.queues[0].rsplit("/", 1)[1]]
    assert (default["depth"], default["queue_state"], default["in_flight"]) == (1, "PAUSED", 0)
    assert default["oldest_task_age_seconds"] >= 0
