"""Property-based tests of the public API (hypothesis): whatever arrives, the answer is a 2xx or a clear 4xx, never
a 5xx; a 4xx leaves no document and no task behind; a 202 "queued" leaves exactly one job and one task.

Requests go to the real `api` entry point (functions-framework's Flask app) with the queue paused, so what a
request wrote is still there to be counted. Examples are derandomised: CI sees the same inputs on every run.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from oncetask_dev.demoapp import app as demo

from .conftest import Footprint, Stack

EXAMPLES = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
FIELD_ERRORS = {400, 413, 422}  # statuses whose body must name the field at fault

# Odd Unicode: controls, combining marks, right-to-left, private use, non-characters, astral emoji, BOM, NUL.
ODD_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40) | st.sampled_from([
    "\x00", "\ufeff", "\u202e", "e\u0301", "\U0001f600" * 70, "\uffff", "\U0010fffd", "a\r\nb", " ", "\\",
])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False) | ODD_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ODD_TEXT, inner, max_size=4),
    max_leaves=12,
)
JOB_TYPES = st.sampled_from(sorted(demo.job_types())) | ODD_TEXT | JSON
PIPELINE_FIELDS = st.fixed_dictionaries({}, optional={
    "sleep_ms": JSON | st.integers(-10, 70_000), "fail_times": JSON | st.integers(-1, 101),
    "fail_kind": JSON | st.sampled_from(["retryable", "permanent"]),
    "fail_stage": JSON | st.sampled_from(["prepare", "work", "finish"]), "record_runs": JSON,
})
PAYLOADS = JSON | PIPELINE_FIELDS | st.fixed_dictionaries({}, optional={"note": ODD_TEXT | JSON})
KEYS = st.none() | ODD_TEXT | st.text(min_size=250, max_size=300) | JSON
CREATE_BODIES = st.fixed_dictionaries({}, optional={
    "job_type": JOB_TYPES, "payload": PAYLOADS, "idempotency_key": KEYS, "extra": JSON})


def check_answer(stack: Stack, answer: Any, before: Footprint) -> None:
    """The invariant of every request: no 5xx; a 4xx is a JSON error naming the problem and changed nothing."""
    assert answer.status_code < 500, answer.get_data()[:500]
    if currently_in_test_context():
        event(f"status {answer.status_code}")  # --hypothesis-show-statistics: which answers the inputs reached
    body = json.loads(answer.get_data())
    after = Footprint.of(stack)
    if answer.status_code >= 400:
        error = body["error"]
        assert error["code"] and error["message"], body
        if answer.status_code in FIELD_ERRORS:
            assert error["field"], body
        assert after.documents_and_tasks() == before.documents_and_tasks(), body
    elif body.get("status") == "queued":
        assert (after.documents - before.documents, after.tasks_created - before.tasks_created) == (1, 1), body
    else:  # a repeat of an earlier request (already_*): nothing new
        assert after.documents_and_tasks() == before.documents_and_tasks(), body


def post(stack: Stack, path: str, raw: bytes, content_type: str = "application/json") -> None:
    before = Footprint.of(stack)
    check_answer(stack, stack.api_client.post(path, data=raw, content_type=content_type), before)


@pytest.fixture
def paused(make_stack: Any) -> Stack:
    return make_stack(paused=True)


@EXAMPLES
@given(body=JSON)
def test_any_json_value_as_the_body_gets_no_5xx_and_a_4xx_writes_nothing(paused: Stack, body: Any) -> None:
    post(paused, "/jobs", json.dumps(body).encode())


@EXAMPLES
@given(body=CREATE_BODIES)
def test_request_shaped_bodies_with_wrong_types_and_odd_keys_get_no_5xx(paused: Stack, body: dict) -> None:
    post(paused, "/jobs", json.dumps(body, ensure_ascii=False).encode())


@EXAMPLES
@given(raw=st.binary(max_size=300) | st.sampled_from([
    b"\xef\xbb\xbf{}", '{"job_type": "noop"}'.encode("utf-16"), b'{"job_type": "noop"', b"null", b"NaN",
    b'{"job_type": "noop", "payload": {"note": "\\udfff"}}', b'{"job_type": "noop", "job_type": 1}',
    b'{"job_type": "noop", "payload": {"note": 1e999}}', b"\x00" * 64,
]), content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]))
def test_raw_bytes_and_odd_encodings_get_no_5xx(paused: Stack, raw: bytes, content_type: str) -> None:
    post(paused, "/jobs", raw, content_type)


@pytest.mark.parametrize("depth", [100, 900, 1_000, 10_000])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_deeply_nested_bodies_are_refused_without_a_crash(paused: Stack, depth: int, shape: str) -> None:
    opened, closed = ("[", "]") if shape == "array" else ('{"a":', "}")
    nested = opened * depth + "1" + closed * depth
    raw = f'{{"job_type": "noop", "payload": {{"note": {nested}}}}}'.encode()
    assert len(raw) <= paused.settings.max_body_bytes
    before = Footprint.of(paused)
    answer = paused.api_client.post("/jobs", data=raw, content_type="application/json")
    check_answer(paused, answer, before)
    assert answer.status_code in (400, 422)


@pytest.mark.parametrize("extra", [-1, 0, 1, 1024])
def test_bodies_around_the_size_limit_are_taken_or_refused_with_413(paused: Stack, extra: int) -> None:
    """Just under the limit is read (then judged on its content); one byte over is 413, before parsing."""
    limit = paused.settings.max_body_bytes
    skeleton = b'{"job_type": "noop", "payload": {}, "pad": ""}'
    raw = skeleton[:-2] + b"x" * (limit + extra - len(skeleton)) + b'"}'
    assert len(raw) == limit + extra
    before = Footprint.of(paused)
    answer = paused.api_client.post("/jobs", data=raw, content_type="application/json")
    check_answer(paused, answer, before)
    assert answer.status_code == (413 if extra > 0 else 422)


@EXAMPLES
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
       job_id=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="/?#"),
                      max_size=40) | st.sampled_from(["0" * 32, "A" * 32, "../" * 5, "%2e%2e", "0" * 33]),
       action=st.sampled_from(["", "/retry", "/cancel", "/other"]))
def test_any_method_on_any_job_path_gets_no_5xx(paused: Stack, method: str, job_id: str, action: str) -> None:
    before = Footprint.of(paused)
    answer = paused.api_client.open(f"/jobs/{job_id}{action}", method=method)
    check_answer(paused, answer, before)


@EXAMPLES
@given(params=st.dictionaries(st.sampled_from(["state", "limit", "cursor", "other"]),
                              ODD_TEXT | st.integers().map(str), max_size=4))
def test_list_with_any_query_gets_no_5xx_and_a_4xx_names_the_parameter(paused: Stack, params: dict) -> None:
    before = Footprint.of(paused)
    answer = paused.api_client.get("/jobs", query_string=params)
    check_answer(paused, answer, before)


@EXAMPLES
@given(trace=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=200),
       authorization=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=100))
def test_odd_trace_and_authorization_headers_get_no_5xx(paused: Stack, trace: str, authorization: str) -> None:
    before = Footprint.of(paused)
    answer = paused.api_client.post("/jobs", json={"job_type": "noop"},
                                    headers={"X-Cloud-Trace-Context": trace, "Authorization": authorization})
    check_answer(paused, answer, before)
