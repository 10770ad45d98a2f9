"""Cancellation, bad input and the API's read side, through the real entry points."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from pydantic import BaseModel

import oncetask
from oncetask.processor import TaskDelivery
from oncetask.openapi import openapi_document
from oncetask.stages import Context, StageOutput
from oncetask.states import JobState

from .conftest import Stack


class SlowPayload(BaseModel):
    seconds: float = 0.0


def _slow_writer() -> Callable[[Context[SlowPayload]], StageOutput]:
    """Writes a first part, works (checking for cancellation), then writes the rest: cut short, it is partial."""

    def run(ctx: Context[SlowPayload]) -> StageOutput:
        payload = ctx.payload
        assert isinstance(payload, SlowPayload)
        first = ctx.artifacts.write("part-1", b"first half")
        deadline = time.monotonic() + payload.seconds
        while time.monotonic() < deadline:
            ctx.check()
            time.sleep(0.01)
        second = ctx.artifacts.write("part-2", b"second half")
        return {"parts": [first, second]}

    return run


def _cancelled_right_after(ctx: Context[SlowPayload]) -> StageOutput:
    """Writes its artifact, then a cancel lands before the completing commit (the API's write, made here)."""
    uri = ctx.artifacts.write("out", b"done")
    ctx.firestore.collection("jobs").document(ctx.job_id).update({"cancel_requested": True})
    return {"out": uri}


# Job types of these tests only, defined as a user defines them.
extra = oncetask.App("cancel-tests")
slow = extra.job("test.slow", payload=SlowPayload)
slow.stage(_slow_writer(), name="one")
slow.stage(_slow_writer(), name="two")
race = extra.job("test.cancel_race", payload=SlowPayload)
race.stage(_slow_writer(), name="one")
race.stage(_cancelled_right_after, name="last")


@pytest.fixture
def slow_stack(make_stack) -> Stack:
    return make_stack(apps=(extra,))


def test_cancel_mid_run_stops_and_leaves_no_partial_artifacts(slow_stack: Stack) -> None:
    stack = slow_stack
    job_id = stack.submit_ok("test.slow", {"seconds": 0.6}, key="cancel-me")
    stack.wait_state(job_id, JobState.RUNNING)
    from fixtures.tasks import wait_until

    wait_until(lambda: stack.job(job_id).current_stage == "two", message="stage two to start")
    wait_until(lambda: any(n.split("/")[2] == "two" for n in stack.artifacts(job_id)), message="a partial artifact")
    answer = stack.api_client.post(f"/jobs/{job_id}/cancel")
    assert answer.status_code == 202 and answer.get_json()["status"] == "cancel_requested"
    job = stack.wait_state(job_id, JobState.CANCELLED)
    assert job.current_stage == "two"
    # Stage one finished (checkpointed) and keeps its artifacts; stage two was cut short and keeps none.
    assert [(n.split("/")[2], n.split("/")[-1]) for n in stack.artifacts(job_id)] == [("one", "part-1"),
                                                                                     ("one", "part-2")]
    assert stack.artifact_problems(job_id) == []


def test_cancel_of_a_queued_job_cancels_it_at_once_and_its_task_does_nothing(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="never")
    assert stack.api_client.post(f"/jobs/{job_id}/cancel").get_json()["status"] == "cancelled"
    stack.resume()
    from fixtures.tasks import wait_until

    wait_until(lambda: stack.tasks() == [], message="the task to be answered")
    job = stack.job(job_id)
    assert job.state is JobState.CANCELLED and job.attempts == 0 and stack.artifacts(job_id) == []


def _nothing_written(stack: Stack) -> bool:
    return stack.firestore_calls().get("Commit", 0) == 0 and stack.tasks() == []


@pytest.mark.parametrize("body, field", [
    ({"job_type": "no.such.type", "payload": {}}, "job_type"),
    ({"job_type": "test.pipeline", "payload": {"sleep_ms": -1}}, "payload.sleep_ms"),
    ({"job_type": "test.pipeline", "payload": {"fail_kind": "sometimes"}}, "payload.fail_kind"),
    ({"job_type": "test.pipeline", "payload": {"unexpected": 1}}, "payload.unexpected"),
    ({"job_type": "test.pipeline", "payload": [1, 2]}, "payload"),
    ({"job_type": "test.pipeline", "idempotency_key": ""}, "idempotency_key"),
    ({"payload": {}}, "job_type"),
    ({"job_type": "noop", "colour": "red"}, "colour"),
])
def test_bad_input_gets_a_4xx_naming_the_field_and_nothing_is_written(stack: Stack, body: dict, field: str) -> None:
    answer = stack.api_client.post("/jobs", json=body)
    assert answer.status_code == 422
    assert answer.get_json()["error"]["field"] == field
    assert _nothing_written(stack)


def test_oversized_body_is_refused_with_413(stack: Stack) -> None:
    body = {"job_type": "noop", "payload": {"note": "x" * (stack.settings.max_body_bytes + 1)}}
    answer = stack.api_client.post("/jobs", json=body)
    assert answer.status_code == 413 and answer.get_json()["error"]["field"] == "body"
    assert _nothing_written(stack)


def test_malformed_json_is_refused_with_400(stack: Stack) -> None:
    answer = stack.api_client.post("/jobs", data=b"{not json", content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "INVALID_JSON"
    assert _nothing_written(stack)


def test_unknown_job_is_404_and_unknown_route_is_404(stack: Stack) -> None:
    assert stack.api_client.get("/jobs/" + "0" * 32).status_code == 404
    assert stack.api_client.get("/jobs/../etc").status_code == 404
    assert stack.api_client.get("/nope").status_code == 404
    assert stack.api_client.delete("/jobs").status_code == 405


def test_get_and_list_show_the_callers_jobs_newest_first_with_a_cursor(make_stack) -> None:
    stack = make_stack(paused=True)
    ids = [stack.submit_ok("noop", {}, key=f"list-{n}") for n in range(3)]
    view = stack.api_client.get(f"/jobs/{ids[0]}").get_json()
    assert (view["job_id"], view["state"], view["job_type"]) == (ids[0], "queued", "noop")
    first = stack.api_client.get("/jobs?limit=2&state=queued").get_json()
    assert [j["job_id"] for j in first["jobs"]] == [ids[2], ids[1]]
    second = stack.api_client.get(f"/jobs?limit=2&cursor={first['next_cursor']}").get_json()
    assert [j["job_id"] for j in second["jobs"]] == [ids[0]] and second["next_cursor"] is None
    assert stack.api_client.get("/jobs?state=finished").get_json()["error"]["field"] == "state"
    assert stack.api_client.get("/jobs?limit=0").status_code == 422


def test_openapi_document_describes_every_route_and_its_4xx(stack: Stack) -> None:
    document = stack.api_client.get("/openapi.json").get_json()
    assert document == json.loads(json.dumps(openapi_document(stack.app.job_types()), default=str))
    paths = document["paths"]
    assert set(paths) == {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/retry", "/jobs/{job_id}/cancel",
                          "/jobs/{job_id}/children", "/stats", "/stats/timeline", "/me", "/healthz", "/openapi.json"}
    assert {"409", "413", "422"} <= set(paths["/jobs"]["post"]["responses"])
    variants = document["components"]["schemas"]["CreateJobRequest"]["oneOf"]
    assert {v["properties"]["job_type"]["enum"][0] for v in variants} >= {"noop", "test.pipeline"}
    assert stack.api_client.get("/healthz").get_json() == {"status": "ok"}


def test_a_lone_surrogate_in_the_body_is_a_400_not_a_crash(stack: Stack) -> None:
    raw = b'{"job_type": "noop", "payload": {"note": "\\ud800"}}'
    answer = stack.api_client.post("/jobs", data=raw, content_type="application/json")
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "body"
    assert _nothing_written(stack)


def test_openapi_requires_the_payload_only_for_job_types_whose_model_needs_one(slow_stack: Stack) -> None:
    variants = slow_stack.api_client.get("/openapi.json").get_json()["components"]["schemas"]["CreateJobRequest"][
        "oneOf"]
    required = {v["properties"]["job_type"]["enum"][0]: v["required"] for v in variants}
    assert required["noop"] == ["job_type"] and required["test.slow"] == ["job_type"]
    for name, job_type in slow_stack.app.job_types().items():
        try:
            job_type.payload_model.model_validate({})
        except Exception:  # noqa: BLE001
            assert required[name] == ["job_type", "payload"]


def test_cancel_that_wins_against_the_completing_commit_leaves_no_artifacts_of_the_last_stage(
        slow_stack: Stack) -> None:
    stack = slow_stack
    job_id = stack.submit_ok("test.cancel_race", {}, key="race")
    job = stack.wait_state(job_id, JobState.CANCELLED, JobState.COMPLETED)
    assert job.state is JobState.CANCELLED
    assert [(n.split("/")[2], n.split("/")[-1]) for n in stack.artifacts(job_id)] == [("one", "part-1"),
                                                                                     ("one", "part-2")]
    assert stack.artifact_problems(job_id) == []
    assert stack.doc("results", job_id) is None


def _nested_list(ctx: Context[SlowPayload]) -> StageOutput:
    return {"pairs": [["a", 1], ["b", 2]]}


nested = extra.job("test.nested_output", payload=SlowPayload)
nested.stage(_nested_list, name="pairs")


def test_a_stage_output_firestore_cannot_store_fails_the_job_at_once_naming_where(make_stack) -> None:
    stack = make_stack(paused=True, apps=(extra,))
    job_id = stack.submit_ok("test.nested_output", {}, key="nested")
    assert stack.services.processor.handle(TaskDelivery(job_id, 1, "t")).outcome == "failed"
    error = stack.job(job_id).errors[-1]
    assert (error["code"], error["attempt"]) == ("BAD_STAGE_OUTPUT", 1)
    assert "output.pairs[0]" in error["message"]
