"""Unit tests of the pure decisions: transitions, names, error classification, lease and retry decisions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest
import requests
from google.api_core import exceptions as gexc

from oncetask.errors import IllegalTransition, PermanentError, RetryableError, bounded, classify
from oncetask.artifacts import garbage, run_fencing
from oncetask.lease import Delivery, LeaseView, decide_delivery, lease_lapsed, local_deadline
from oncetask.job import with_error
from oncetask.logs import (ERROR_EVENT_TYPE, JsonFormatter, bound, trace_from_header, trace_headers,
                           trace_id_from_headers)
from oncetask.naming import job_id_for, payload_hash, task_id, task_name
from oncetask.policy import attempts_spent, call_with_retry, queue_backoff
from oncetask.app import DEFAULT_LANES, Retry
from oncetask.routing import QueuePolicy, Route, Router, shard_of
from oncetask.settings import Settings
from oncetask.states import TERMINAL, TRANSITIONS, JobState, can_transition, transition

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


# States ------------------------------------------------------------------------------------------------------

def test_every_state_has_a_row_in_the_transition_table() -> None:
    assert set(TRANSITIONS) == set(JobState)


def test_terminal_states_other_than_failed_allow_no_transition() -> None:
    for state in TERMINAL - {JobState.FAILED}:
        assert TRANSITIONS[state] == frozenset()


def test_failed_job_can_only_be_requeued_by_a_manual_retry() -> None:
    assert TRANSITIONS[JobState.FAILED] == frozenset({JobState.QUEUED})


def test_completed_job_cannot_be_run_again() -> None:
    with pytest.raises(IllegalTransition, match="completed to running"):
        transition(JobState.COMPLETED, JobState.RUNNING)


def test_running_job_can_be_taken_over_by_a_new_lease() -> None:
    assert transition("running", "running") is JobState.RUNNING


def test_queued_job_cannot_complete_without_running() -> None:
    assert not can_transition(JobState.QUEUED, JobState.COMPLETED)


# Names -------------------------------------------------------------------------------------------------------

def test_same_owner_type_and_key_give_the_same_job_id() -> None:
    assert job_id_for("alice", "noop", "k1") == job_id_for("alice", "noop", "k1")


def test_job_id_differs_per_owner_type_and_key() -> None:
    ids = {job_id_for(o, t, k) for o in ("alice", "bob") for t in ("noop", "x") for k in ("k1", "k2")}
    assert len(ids) == 8


def test_job_id_is_a_32_hex_hash_so_ids_spread_evenly() -> None:
    ids = [job_id_for("alice", "noop", f"key-{n}") for n in range(1600)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    first_digits = {i[0] for i in ids}
    assert len(first_digits) == 16  # sequential keys do not give sequential IDs


def test_job_id_without_key_is_random() -> None:
    assert job_id_for("alice", "noop", None) != job_id_for("alice", "noop", None)


def test_task_name_is_deterministic_per_generation() -> None:
    assert task_name("projects/p/locations/l/queues/q", "ab", 2) == "projects/p/locations/l/queues/q/tasks/ab-g2"
    assert task_id("ab", 1) != task_id("ab", 2)


def test_task_names_of_two_incarnations_of_one_job_id_differ() -> None:
    assert task_id("ab", 1, "0f0f0f0f") == "ab-0f0f0f0f-g1"
    assert task_id("ab", 1, "0f0f0f0f") != task_id("ab", 1, "a1a1a1a1")


def test_task_generation_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="generation"):
        task_id("ab", 0)


def test_payload_hash_ignores_key_order_but_not_values() -> None:
    assert payload_hash("t", {"a": 1, "b": 2}) == payload_hash("t", {"b": 2, "a": 1})
    assert payload_hash("t", {"a": 1}) != payload_hash("t", {"a": 2})


# Errors ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("exc, code", [
    (gexc.ServiceUnavailable("x"), "UNAVAILABLE"),
    (gexc.DeadlineExceeded("x"), "DEADLINE_EXCEEDED"),
    (gexc.ResourceExhausted("x"), "RESOURCE_EXHAUSTED"),
    (gexc.Aborted("x"), "ABORTED"),
    (gexc.TooManyRequests("x"), "RESOURCE_EXHAUSTED"),
    (TimeoutError("slow"), "TIMEOUT"),
    (ConnectionResetError("reset"), "CONNECTION"),
    (requests.ConnectionError("refused"), "CONNECTION"),
    (RetryableError("RATE_LIMIT", "slow down"), "RATE_LIMIT"),
])
def test_transient_errors_are_retryable(exc: BaseException, code: str) -> None:
    classified = classify(exc, stage="work", attempt=2)
    assert (classified.code, classified.retryable, classified.stage, classified.attempt) == (code, True, "work", 2)


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(response=response)


@pytest.mark.parametrize("status, retryable", [(408, True), (429, True), (500, True), (503, True),
                                               (400, False), (403, False), (404, False)])
def test_http_statuses_are_classified_by_code(status: int, retryable: bool) -> None:
    assert classify(_http_error(status)).retryable is retryable


def test_validation_and_bad_input_are_permanent() -> None:
    class Model(pydantic.BaseModel):
        n: int

    with pytest.raises(pydantic.ValidationError) as info:
        Model.model_validate({"n": "x"})
    assert classify(info.value).retryable is False
    assert classify(gexc.InvalidArgument("bad")).retryable is False
    assert classify(PermanentError("BAD_IMAGE", "not a PNG")).code == "BAD_IMAGE"


def test_an_unknown_exception_is_permanent_since_a_bug_does_not_heal() -> None:
    assert classify(RuntimeError("boom")).retryable is False


def test_recorded_error_has_code_message_stage_retryable_attempt_time_type_and_traceback() -> None:
    record = classify(gexc.ServiceUnavailable("down"), stage="s", attempt=1).to_dict()
    assert set(record) == {"code", "message", "stage", "retryable", "attempt", "at", "type", "traceback"}
    assert record["type"] == "google.api_core.exceptions.ServiceUnavailable"
    assert record["traceback"] is None  # never raised: no frames to show


def _raised(function: Any) -> BaseException:
    try:
        function()
    except Exception as exc:  # noqa: BLE001 - the test wants the exception as raised
        return exc
    raise AssertionError("expected an exception")


@pytest.mark.parametrize("function, kind", [
    (lambda: {}["missing"], "KeyError"),
    (lambda: [][1], "IndexError"),
    (lambda: None + 1, "TypeError"),  # type: ignore[operator]
    (lambda: None.nothing, "AttributeError"),  # type: ignore[union-attr]
    (lambda: undefined_name, "NameError"),  # type: ignore[name-defined]  # noqa: F821
    (lambda: _assert_false(), "AssertionError"),
    (lambda: 1 / 0, "ZeroDivisionError"),
])
def test_a_programming_error_is_a_permanent_bug_that_names_its_type(function: Any, kind: str) -> None:
    error = classify(_raised(function), stage="work", attempt=1)
    assert (error.code, error.retryable, error.type, error.is_bug) == ("BUG", False, kind, True)
    assert error.message.startswith(f"{kind}: ") and "programming error" in error.message and "not bad input" in \
        error.message
    assert error.traceback is not None and error.traceback.startswith("Traceback (most recent call last):")
    assert f"\n{kind}" in error.traceback  # the exception's own line, as traceback.format_exc() ends


def _assert_false() -> None:
    assert False, "the code's own expectation"  # noqa: B011


def test_a_value_error_raised_on_purpose_is_bad_input_not_a_bug() -> None:
    error = classify(_raised(lambda: int("twelve")))
    assert (error.code, error.retryable, error.type) == ("INVALID_ARGUMENT", False, "ValueError")
    assert error.message == "invalid literal for int() with base 10: 'twelve'"


def test_a_long_traceback_is_bounded_keeping_its_head_and_innermost_frames() -> None:
    def ping(n: int) -> None:  # two functions in turn: Python does not fold their frames as it folds a loop's
        if n == 0:
            raise KeyError("deep")
        pong(n - 1)

    def pong(n: int) -> None:
        ping(n - 1)

    error = classify(_raised(lambda: ping(400)))
    assert error.traceback is not None and len(error.traceback) <= 32_000
    stored = error.to_dict()["traceback"]
    assert len(stored) <= 4000 and stored.startswith("Traceback (most recent call last):\n")
    assert stored.rstrip().endswith("KeyError: 'deep'") and 'raise KeyError("deep")' in stored
    cut = bounded("Traceback (most recent call last):\n" + "".join(f"  frame {n}\n" for n in range(1000)) + "E: x\n",
                  400)
    assert cut is not None and len(cut) <= 400 and "characters cut" in cut
    assert cut.startswith("Traceback (most recent call last):\n") and cut.endswith("  frame 999\nE: x\n")


def test_only_the_latest_errors_keep_their_tracebacks() -> None:
    errors: list[dict[str, Any]] = []
    for attempt in range(1, 26):
        errors = with_error(errors, {"code": "BUG", "attempt": attempt, "traceback": f"tb {attempt}"})
    assert [e["attempt"] for e in errors] == list(range(6, 26))  # the last 20
    assert [e["traceback"] for e in errors][-4:] == [None, "tb 23", "tb 24", "tb 25"]


def test_transient_call_is_retried_within_the_attempt_then_succeeds() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise gexc.ServiceUnavailable("blip")
        return "ok"

    assert call_with_retry(flaky) == "ok" and len(calls) == 3


def test_permanent_call_error_is_not_retried() -> None:
    calls = []

    def bad() -> None:
        calls.append(1)
        raise gexc.InvalidArgument("no")

    with pytest.raises(gexc.InvalidArgument):
        call_with_retry(bad)
    assert len(calls) == 1


# Lease -------------------------------------------------------------------------------------------------------

def view(state: JobState, generation: int = 1, renewed_ago: float | None = None, ttl: float = 10.0) -> LeaseView:
    """A job as read at server time NOW, its lease renewed `renewed_ago` seconds before (server time too)."""
    renewed = None if renewed_ago is None else NOW - timedelta(seconds=renewed_ago)
    return LeaseView(state, generation, renewed, ttl, NOW)


def test_delivery_of_a_finished_job_is_skipped() -> None:
    for state in TERMINAL:
        assert decide_delivery(view(state), 1) is Delivery.SKIP_DONE


def test_delivery_while_another_worker_holds_a_live_lease_is_busy() -> None:
    assert decide_delivery(view(JobState.RUNNING, renewed_ago=9.9), 1) is Delivery.BUSY


def test_delivery_after_the_lease_lapsed_takes_over() -> None:
    assert decide_delivery(view(JobState.RUNNING, renewed_ago=10.0), 1) is Delivery.ACQUIRE


def test_a_lease_is_judged_by_the_servers_times_only() -> None:
    renewed = NOW - timedelta(seconds=3)
    assert not lease_lapsed(renewed, 10.0, NOW)
    assert lease_lapsed(renewed, 10.0, NOW + timedelta(seconds=7))
    assert not lease_lapsed(renewed, 10.0, None)  # no server time to judge by: the holder is presumed alive
    assert lease_lapsed(None, 10.0, NOW)  # never renewed: no holder


def test_task_of_an_older_generation_is_stale() -> None:
    assert decide_delivery(view(JobState.QUEUED, generation=3), 2) is Delivery.SKIP_STALE


def test_queued_and_retrying_jobs_are_acquired() -> None:
    assert decide_delivery(view(JobState.QUEUED), 1) is Delivery.ACQUIRE
    assert decide_delivery(view(JobState.RETRYING), 1) is Delivery.ACQUIRE


def test_local_lease_deadline_ends_before_the_stored_expiry() -> None:
    assert 100 < local_deadline(100.0, 120.0) < 220.0


# Retry policy ------------------------------------------------------------------------------------------------

def test_the_third_attempt_of_three_is_the_last() -> None:
    assert not attempts_spent(used=2, max_attempts=3)
    assert attempts_spent(used=3, max_attempts=3)


def test_unlimited_attempts_never_end() -> None:
    assert not attempts_spent(10_000, -1)


# Artifacts ---------------------------------------------------------------------------------------------------

def test_an_objects_run_fencing_is_read_from_its_name() -> None:
    assert run_fencing("jobs/j/resize/7-0a1b2c3d/w64.webp") == 7
    assert run_fencing("jobs/j/resize/7-0a1b2c3d/sub/dir/w64.webp") == 7
    assert run_fencing("jobs/j/resize/w64.webp") == 0  # a name of an earlier version: no run


def test_garbage_is_what_no_checkpoint_names_up_to_the_sweepers_fencing() -> None:
    objects = {"jobs/j/a/1-aa/x": 1, "jobs/j/a/2-bb/x": 2, "jobs/j/b/2-bb/y": 3, "jobs/j/b/3-cc/y": 4}
    named = {"jobs/j/a/2-bb/x"}
    assert garbage(objects, named, up_to_fencing=2) == {"jobs/j/a/1-aa/x": 1, "jobs/j/b/2-bb/y": 3}


def test_queue_backoff_doubles_then_grows_linearly_then_caps() -> None:
    assert [queue_backoff(n, 10, 300, 3) for n in range(1, 9)] == [10, 20, 40, 80, 160, 240, 300, 300]


def test_seed_queue_defaults_are_the_default_lanes_and_retry() -> None:
    retry, (interactive, batch) = Retry(), DEFAULT_LANES
    assert (Settings().max_attempts, retry.max_attempts, retry.min_backoff, retry.max_backoff) == (3, 3, 30, 600)
    assert (retry.max_doublings, retry.max_retry_duration) == (3, 3600)
    assert (interactive.name, interactive.rate, interactive.concurrency) == ("interactive", 50, 50)
    assert (batch.name, batch.rate, batch.concurrency) == ("batch", 10, 10)


# Routing -----------------------------------------------------------------------------------------------------

def _policy(rate: float = 50) -> QueuePolicy:
    return QueuePolicy(rate, 50, 30, 600, 3, 3600, 6)


def test_a_job_maps_to_its_lanes_queue_and_a_shard_fixed_by_its_id() -> None:
    router = Router("ot", {"interactive": (_policy(), 1), "batch": (_policy(10), 4)},
                    {"a": Route("interactive", None), "b": Route("batch", None)}, "interactive")
    job_id = "0" * 31 + "7"
    assert router.queue(job_id, "a") == "ot-interactive"
    assert router.queue(job_id, "b") == router.queue(job_id, "b") == f"ot-batch-{shard_of(job_id, 4)}"
    assert router.queue(job_id, "a", lane="batch").startswith("ot-batch-")
    with pytest.raises(KeyError):
        router.queue(job_id, "a", lane="express")


def test_shards_spread_jobs_evenly() -> None:
    counts = [0] * 4
    for n in range(4000):
        counts[shard_of(job_id_for("o", "t", f"k{n}"), 4)] += 1
    assert min(counts) > 900


def test_a_job_type_with_its_own_policy_gets_queues_of_its_own_in_every_lane() -> None:
    router = Router("ot", {"interactive": (_policy(), 1), "batch": (_policy(10), 2)},
                    {"a": Route("interactive", None), "image.thumbs": Route("batch", _policy(5))}, "interactive")
    names = [spec.name for spec in router.plan()]
    assert names == ["ot-interactive", "ot-batch-0", "ot-batch-1", "ot-interactive-image-thumbs",
                     "ot-batch-image-thumbs-0", "ot-batch-image-thumbs-1"]
    assert router.queues_of("image.thumbs") == names[3:]


# Logs --------------------------------------------------------------------------------------------------------

def test_trace_header_becomes_the_cloud_logging_trace_field() -> None:
    assert trace_from_header("105445aa7843bc8bf206b12000100000/1;o=1", "p") == \
        "projects/p/traces/105445aa7843bc8bf206b12000100000"
    assert trace_from_header("not a trace!", "p") is None


def test_a_trace_id_is_read_from_traceparent_first_then_the_cloud_header() -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    both = {"traceparent": f"00-{trace}-00f067aa0ba902b7-01", "X-Cloud-Trace-Context": "1" * 32 + "/1;o=1"}
    assert trace_id_from_headers(both) == trace
    assert trace_id_from_headers({"X-Cloud-Trace-Context": trace.upper() + "/5"}) == trace
    for bad in ({"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"}, {"X-Cloud-Trace-Context": "xyz/1"},
                {"traceparent": "garbage"}, {}):
        assert trace_id_from_headers(bad) is None


def test_a_task_carries_its_jobs_trace_in_both_headers_with_a_span_of_its_own() -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = trace_headers(trace, "projects/p/locations/l/queues/q/tasks/a-g1")
    assert trace_id_from_headers({"traceparent": headers["traceparent"]}) == trace
    assert trace_id_from_headers({"X-Cloud-Trace-Context": headers["X-Cloud-Trace-Context"]}) == trace
    assert headers["X-Cloud-Trace-Context"].endswith(";o=1") and headers["traceparent"].endswith("-01")
    other = trace_headers(trace, "projects/p/locations/l/queues/q/tasks/a-g2")
    assert other["traceparent"] != headers["traceparent"]  # another task, another span
    assert trace_headers(trace, "projects/p/locations/l/queues/q/tasks/a-g1") == headers  # the same task, the same


def test_a_line_with_a_traceback_is_an_error_reporting_event() -> None:
    import logging

    try:
        {}["missing"]
    except KeyError:
        import sys
        record = logging.LogRecord("oncetask.x", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["@type"] == ERROR_EVENT_TYPE
    assert line["serviceContext"]["service"]
    assert line["stack_trace"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing'" in line["stack_trace"]
    plain = logging.LogRecord("oncetask.x", logging.ERROR, __file__, 1, "no traceback", (), None)
    assert "@type" not in json.loads(JsonFormatter().format(plain))


def test_log_line_is_json_with_severity_and_bound_context() -> None:
    import logging

    record = logging.LogRecord("oncetask.x", logging.WARNING, __file__, 1, "hello %s", ("there",), None)
    with bound(job_id="j1", stage="s", attempt=2, trace="projects/p/traces/t"):
        line = json.loads(JsonFormatter().format(record))
    assert line["severity"] == "WARNING" and line["message"] == "hello there"
    assert (line["job_id"], line["stage"], line["attempt"]) == ("j1", "s", 2)
    assert line["logging.googleapis.com/trace"] == "projects/p/traces/t"
