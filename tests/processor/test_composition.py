"""Composition: child jobs (fan-out, fan-in), stages in their own deliveries, durable sleep, delayed submissions,
completion callbacks and graceful shutdown, through the real processor, API and emulators."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import grpc
import pytest
from pydantic import BaseModel

import oncetask
from fixtures.tasks import wait_until
from oncetask import Context, JobEnded, PermanentError, RetryableError
from oncetask.children import child_id
from oncetask.job import JOBS
from oncetask.processor import TaskDelivery
from oncetask.services import Services
from oncetask.shutdown import SHUTTING_DOWN
from oncetask.states import JobState

from .conftest import Stack

# Job types of these tests, defined as a user defines them ------------------------------------------------------

app = oncetask.App("composition-tests")


class Segment(BaseModel):
    n: int
    fail: bool = False
    hold_ms: int = 0


segment = app.job("test.segment", payload=Segment)


@segment.stage
def square(ctx: Context[Segment]) -> dict:
    time.sleep(ctx.payload.hold_ms / 1000)
    if ctx.payload.fail:
        raise PermanentError("BAD_SEGMENT", f"segment {ctx.payload.n} cannot be processed")
    return {"square": ctx.payload.n ** 2}


class Split(BaseModel):
    count: int = 3
    fail_index: int | None = None
    policy: Literal["fail", "collect"] = "fail"
    crash_after_start: bool = False
    hold_ms: int = 0
    child_type: str = "test.segment"


orchestrate = app.job("test.orchestrate", payload=Split)
released = threading.Event()  # set by tests that hold the split stage after it started its children


@orchestrate.stage
def split(ctx: Context[Split]) -> dict:
    p = ctx.payload
    ids = ctx.start_children(p.child_type, [Segment(n=i, fail=i == p.fail_index, hold_ms=p.hold_ms)
                                             for i in range(p.count)], on_failure=p.policy)
    if p.crash_after_start and ctx.attempt == 1:
        raise RetryableError("CRASHED", "the stage dies after starting its children")
    return {"started": len(ids)}


@orchestrate.stage
def stitch(ctx: Context[Split]) -> dict:
    outcomes = ctx.children()
    return {"total": sum(o.outputs.get("square", {}).get("square", 0) for o in outcomes),
            "states": [o.state for o in outcomes], "indexes": [o.index for o in outcomes]}


class Steps(BaseModel):
    sleep_seconds: float | None = None


def _step(name: str) -> Any:
    def run(ctx: Context[Steps]) -> dict:
        if name == "first" and ctx.payload.sleep_seconds is not None:
            ctx.sleep(ctx.payload.sleep_seconds)
        return {"step": name, "at": datetime.now(timezone.utc).isoformat()}

    return run


per_stage = app.job("test.per_stage", payload=Steps, delivery="per_stage")
sleepy = app.job("test.sleepy", payload=Steps)
for _definition in (per_stage, sleepy):
    for _name in ("first", "second", "third"):
        _definition.stage(_step(_name), name=_name)

notify = app.job("test.notify", payload=JobEnded)


@notify.stage
def record(ctx: Context[JobEnded]) -> dict:
    return {"heard": ctx.payload.job_id, "state": ctx.payload.state}


class Long(BaseModel):
    seconds: float = 5.0


slow = app.job("test.long", payload=Long)
hurry = threading.Event()  # a test sets it to let the long stage finish at once


@slow.stage
def long(ctx: Context[Long]) -> dict:
    ctx.artifacts.write("partial.bin", b"half done")
    deadline = time.monotonic() + ctx.payload.seconds
    while time.monotonic() < deadline and not hurry.is_set():
        ctx.check()
        time.sleep(0.01)
    return {"done": True}


@pytest.fixture
def comp(make_stack) -> Stack:
    return make_stack(apps=(app,))


@pytest.fixture
def paused(make_stack) -> Stack:
    return make_stack(paused=True, apps=(app,))


def deliver_all(stack: Stack, job_ids: list[str], generation: int = 1) -> list[str]:
    """Deliver each job's task once, all at the same moment (as Cloud Tasks does when it is not throttled)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return [o.outcome for o in pool.map(
            lambda job_id: stack.services.processor.handle(TaskDelivery(job_id, generation, "t")), job_ids)]


def wake_tasks(stack: Stack, parent: str) -> list[str]:
    return [name for name in stack.tasks() if f"/tasks/{parent}-" in name and "-w" in name.rsplit("-g", 1)[1]]


def children_of(stack: Stack, parent: str, count: int) -> list[str]:
    job = stack.job(parent)
    return [child_id(parent, job.incarnation, "split", i) for i in range(count)]


# Child jobs ------------------------------------------------------------------------------------------------------

def test_a_stage_starts_children_and_the_next_stage_sees_their_outputs_once_all_have_ended(comp: Stack) -> None:
    parent = comp.submit_ok("test.orchestrate", {"count": 5}, key="fan-out")
    job = comp.wait_state(parent, JobState.COMPLETED)
    assert job.checkpoints["stitch"]["output"] == {"total": sum(n * n for n in range(5)),
                                                    "states": ["completed"] * 5, "indexes": list(range(5))}
    for index, child in enumerate(children_of(comp, parent, 5)):
        assert comp.job(child).parent["job_id"] == parent and comp.job(child).parent["index"] == index


def test_a_rerun_of_the_starting_stage_starts_no_second_child(paused: Stack) -> None:
    parent = paused.submit_ok("test.orchestrate", {"count": 4, "crash_after_start": True}, key="rerun")
    assert paused.services.processor.handle(TaskDelivery(parent, 1, "t")).outcome == "retrying"
    assert paused.services.processor.handle(TaskDelivery(parent, 1, "t", 1)).outcome == "waiting"
    started = [d.id for d in paused.services.store.client.collection(JOBS).stream()
               if (d.to_dict().get("parent") or {}).get("job_id") == parent]
    assert sorted(started) == sorted(children_of(paused, parent, 4))
    child_tasks = [n for n in paused.tasks() if any(f"/tasks/{c}-" in n for c in started)]
    assert len(child_tasks) == 4  # one task per child, however often the stage ran


def test_children_ending_at_the_same_moment_wake_the_parent_exactly_once(paused: Stack) -> None:
    parent = paused.submit_ok("test.orchestrate", {"count": 12}, key="together")
    assert paused.services.processor.handle(TaskDelivery(parent, 1, "t")).outcome == "waiting"
    assert deliver_all(paused, children_of(paused, parent, 12)) == ["completed"] * 12
    assert len(wake_tasks(paused, parent)) == 1
    job = paused.job(parent)
    assert paused.services.processor.handle(TaskDelivery(parent, job.generation, "wake")).outcome == "completed"
    assert paused.services.processor.handle(TaskDelivery(parent, job.generation, "wake")).outcome == \
        "already_completed"  # a second copy of the wake-up changes nothing


def test_an_early_wake_up_finds_children_unfinished_and_writes_nothing(paused: Stack) -> None:
    parent = paused.submit_ok("test.orchestrate", {"count": 3}, key="early")
    assert paused.services.processor.handle(TaskDelivery(parent, 1, "t")).outcome == "waiting"
    deliver_all(paused, children_of(paused, parent, 3)[:2])
    before = paused.job(parent)
    assert paused.services.processor.handle(TaskDelivery(parent, 1, "early")).outcome == "still_waiting"
    assert paused.job(parent).update_time == before.update_time


def test_the_last_child_ending_before_the_parent_parks_still_wakes_it(paused: Stack, monkeypatch) -> None:
    """The children all end while the parent's stage is still running (they find it `running`, not waiting, so
    none of them wakes it); the parent, counting again after it parks, wakes itself."""
    parent = paused.submit_ok("test.orchestrate", {"count": 3}, key="late-park")
    processor = paused.services.processor
    real_park = processor._park_waiting

    def children_end_first(keeper, stage, done, join, following):  # noqa: ANN001 - the processor's own signature
        assert deliver_all(paused, children_of(paused, parent, 3)) == ["completed"] * 3
        assert wake_tasks(paused, parent) == []  # the parent was still running: nobody woke it
        return real_park(keeper, stage, done, join, following)

    monkeypatch.setattr(processor, "_park_waiting", children_end_first)
    assert processor.handle(TaskDelivery(parent, 1, "t")).outcome == "waiting"
    monkeypatch.undo()
    assert len(wake_tasks(paused, parent)) == 1
    assert processor.handle(TaskDelivery(parent, 1, "wake")).outcome == "completed"


def test_a_wake_up_its_children_could_not_send_is_sent_by_the_cleanup(paused: Stack, grpc_gate,
                                                                       tasks_emulator) -> None:
    """The children end while cut off from Cloud Tasks (or each dies right after its terminal commit): no wake-up
    task exists. The cleanup finds the waiting parent whose children are all done and wakes it, once."""
    parent = paused.submit_ok("test.orchestrate", {"count": 2}, key="lost-wake")
    assert paused.services.processor.handle(TaskDelivery(parent, 1, "t")).outcome == "waiting"
    gate = grpc_gate(tasks_emulator.host)
    gate.fail(lambda method, request: method == "CreateTask", code=grpc.StatusCode.UNAVAILABLE)
    cut_off = paused.services_with(cloud_tasks_emulator_host=gate.host)
    assert [cut_off.processor.handle(TaskDelivery(c, 1, "t")).outcome
            for c in children_of(paused, parent, 2)] == ["completed", "completed"]
    assert wake_tasks(paused, parent) == []
    time.sleep(paused.settings.orphan_grace_seconds + 0.1)
    paused.services.cleanup.run()
    paused.services.cleanup.run()
    assert len(wake_tasks(paused, parent)) == 1
    assert paused.services.processor.handle(TaskDelivery(parent, 1, "wake")).outcome == "completed"


def test_a_child_failing_for_good_fails_the_parent_and_stops_the_other_children(comp: Stack) -> None:
    parent = comp.submit_ok("test.orchestrate", {"count": 4, "fail_index": 1, "hold_ms": 300}, key="child-fails")
    job = comp.wait_state(parent, JobState.FAILED)
    assert job.errors[-1]["code"] == "CHILD_FAILED" and "child 1" in job.errors[-1]["message"]
    children = [comp.wait_state(c, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
                for c in children_of(comp, parent, 4)]
    assert children[1].state is JobState.FAILED
    assert all(c.cancel_requested or c.state is not JobState.QUEUED for c in children)


def test_with_collect_the_parent_goes_on_with_every_outcome(comp: Stack) -> None:
    parent = comp.submit_ok("test.orchestrate", {"count": 3, "fail_index": 0, "policy": "collect"}, key="collect")
    job = comp.wait_state(parent, JobState.COMPLETED)
    assert job.checkpoints["stitch"]["output"]["states"] == ["failed", "completed", "completed"]


def test_cancelling_a_waiting_parent_cancels_its_children(paused: Stack) -> None:
    parent = paused.submit_ok("test.orchestrate", {"count": 3}, key="cancel-parent")
    assert paused.services.processor.handle(TaskDelivery(parent, 1, "t")).outcome == "waiting"
    answer = paused.api_client.post(f"/jobs/{parent}/cancel")
    assert answer.status_code == 202 and answer.get_json()["status"] == "cancelled"
    children = children_of(paused, parent, 3)
    assert all(paused.job(c).cancel_requested for c in children)
    assert deliver_all(paused, children) == ["cancelled"] * 3


def test_two_hundred_children_fan_in_to_one_parent(comp: Stack) -> None:
    parent = comp.submit_ok("test.orchestrate", {"count": 200}, key="two-hundred")
    job = comp.wait_state(parent, JobState.COMPLETED, JobState.FAILED, timeout=120)
    assert job.state is JobState.COMPLETED, job.errors
    assert job.checkpoints["stitch"]["output"]["total"] == sum(n * n for n in range(200))
    assert job.checkpoints["stitch"]["output"]["indexes"] == list(range(200))


@pytest.mark.parametrize(("payload", "code"), [
    ({"count": 1001}, "TOO_MANY_CHILDREN"),
    ({"child_type": "no.such.type"}, "INVALID_CHILDREN"),
])
def test_a_stage_starting_children_wrongly_fails_its_job_naming_the_problem(paused: Stack, payload: dict,
                                                                          code: str) -> None:
    parent = paused.submit_ok("test.orchestrate", payload, key=f"bad-{code}")
    assert paused.services.processor.handle(TaskDelivery(parent, 1, "t")).outcome == "failed"
    assert paused.job(parent).errors[-1]["code"] == code


# Stages in their own deliveries, and sleeping between stages -----------------------------------------------------

def test_a_per_stage_job_runs_each_stage_in_its_own_delivery_at_its_floor_of_calls(make_stack) -> None:
    stack = make_stack(apps=(app,))
    assert stack.firestore_calls() == {}
    job_id = stack.submit_ok("test.per_stage", {}, key="per-stage")
    # Watch the queue, not Firestore, so that only the product's calls are counted: each stage's handler creates
    # the next task before it answers, so the queue is empty only once the last stage answered.
    wait_until(lambda: stack.tasks() == [], timeout=20, message="the job's tasks to be done")
    calls = sum(stack.firestore_calls().values())
    job = stack.job(job_id)
    assert (job.generation, sorted(job.checkpoints)) == (3, ["first", "second", "third"])
    assert calls <= 1 + 3 * 3  # submit + per stage: read, acquire, and the commit that checkpoints and hands over


def test_a_stage_can_sleep_before_the_next_without_holding_a_worker(paused: Stack) -> None:
    job_id = paused.submit_ok("test.sleepy", {"sleep_seconds": 600}, key="sleepy")
    assert paused.services.processor.handle(TaskDelivery(job_id, 1, "t")).outcome == "sleeping"
    job = paused.job(job_id)
    assert job.state is JobState.SCHEDULED and job.lease_owner is None and sorted(job.checkpoints) == ["first"]
    assert timedelta(seconds=590) < job.run_at - datetime.now(timezone.utc) < timedelta(seconds=610)
    (task,) = [paused.services.queue.client.get_task(name=n) for n in paused.tasks() if n.endswith("-g2")]
    assert abs((task.schedule_time - job.run_at).total_seconds()) < 1
    assert paused.services.processor.handle(TaskDelivery(job_id, 2, "t")).outcome == "completed"


def test_a_sleep_past_cloud_tasks_limit_fails_the_job_naming_the_limit(paused: Stack) -> None:
    job_id = paused.submit_ok("test.sleepy", {"sleep_seconds": 31 * 86400}, key="too-long")
    assert paused.services.processor.handle(TaskDelivery(job_id, 1, "t")).outcome == "failed"
    error = paused.job(job_id).errors[-1]
    assert error["code"] == "INVALID_SLEEP" and "30 days" in error["message"]


# Delayed submissions ----------------------------------------------------------------------------------------------

def test_a_delayed_job_is_scheduled_until_its_time_and_can_be_cancelled_meanwhile(paused: Stack) -> None:
    answer = paused.submit("test.segment", {"n": 2}, key="later", delay_seconds=3600)
    assert answer.status_code == 202 and answer.get_json()["status"] == "scheduled"
    job_id = answer.get_json()["job_id"]
    job = paused.job(job_id)
    assert job.state is JobState.SCHEDULED and job.run_at > datetime.now(timezone.utc) + timedelta(minutes=59)
    assert paused.api_client.post(f"/jobs/{job_id}/cancel").get_json()["status"] == "cancelled"
    assert paused.tasks() == []  # its task went with it


@pytest.mark.parametrize(("extra", "field"), [
    ({"delay_seconds": -1}, "delay_seconds"),
    ({"delay_seconds": 31 * 86400}, "delay_seconds"),
    ({"delay_seconds": "soon"}, "delay_seconds"),
    ({"run_at": "2026-12-01T10:00:00"}, "run_at"),  # no timezone
    ({"delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"}, "delay_seconds"),
    ({"callback": {"url": "http://example.com/hook"}}, "callback.url"),
    ({"callback": {"job_type": "no.such.type"}}, "callback.job_type"),
    ({"callback": {"url": "https://example.com/hook", "on": ["done"]}}, "callback.on.0"),
])
def test_bad_schedules_and_callbacks_get_a_4xx_naming_the_field_and_write_nothing(paused: Stack, extra: dict,
                                                                                 field: str) -> None:
    answer = paused.submit("test.segment", {"n": 1}, key="bad-options", **extra)
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"]["field"] == field
    assert list(paused.services.store.client.collection(JOBS).stream()) == [] and paused.tasks() == []


# Completion callbacks -----------------------------------------------------------------------------------------------

SECRET = "test-callback-secret"


@pytest.fixture
def with_callbacks(make_stack) -> Stack:
    return make_stack(apps=(app,), callback_secret=SECRET, allow_local_callbacks=True)


def test_a_completed_job_calls_its_url_once_signed_with_an_idempotency_key(with_callbacks: Stack,
                                                                           task_target) -> None:
    stack = with_callbacks
    job_id = stack.submit_ok("test.segment", {"n": 3}, key="hook", callback={"url": task_target.url})
    stack.wait_state(job_id, JobState.COMPLETED)
    (call,) = task_target.wait_for(1)
    assert oncetask.verify_signature(SECRET, call.headers.get("X-Oncetask-Signature"), call.body)
    assert not oncetask.verify_signature("another secret", call.headers.get("X-Oncetask-Signature"), call.body)
    body = json.loads(call.body)
    assert (body["job_id"], body["state"], body["outputs"]) == (job_id, "completed", {"square": {"square": 9}})
    assert call.headers["Idempotency-Key"] == body["idempotency_key"]
    wait_until(lambda: stack.job(job_id).callback_pending is False, message="the callback to be marked sent")
    time.sleep(0.5)
    assert len(task_target.requests) == 1


def test_a_callback_its_worker_could_not_send_is_sent_once_by_the_cleanup(with_callbacks: Stack, task_target,
                                                                           grpc_gate, tasks_emulator) -> None:
    """The job completes, then its worker cannot reach Cloud Tasks (it dies, the network goes): the callback stays
    pending; the cleanup sends it, and a second cleanup sends nothing more."""
    stack = with_callbacks
    stack.pause()
    job_id = stack.submit_ok("test.segment", {"n": 4}, key="hook-later", callback={"url": task_target.url})
    gate = grpc_gate(tasks_emulator.host)
    gate.fail(lambda method, request: method == "CreateTask", code=grpc.StatusCode.UNAVAILABLE)
    cut_off = stack.services_with(cloud_tasks_emulator_host=gate.host)
    assert cut_off.processor.handle(TaskDelivery(job_id, 1, "t")).outcome == "completed"
    assert stack.job(job_id).callback_pending is True and task_target.requests == []
    time.sleep(stack.settings.orphan_grace_seconds + 0.1)
    stack.services.cleanup.run()
    stack.services.cleanup.run()
    task_target.wait_for(1)
    time.sleep(0.5)
    assert len(task_target.requests) == 1 and stack.job(job_id).callback_pending is False


def test_a_callback_can_start_a_follow_up_job_once(with_callbacks: Stack) -> None:
    stack = with_callbacks
    job_id = stack.submit_ok("test.segment", {"n": 5}, key="follow", callback={"job_type": "test.notify"})
    stack.wait_state(job_id, JobState.COMPLETED)
    follow_ups = wait_until(lambda: [d for d in stack.services.store.client.collection(JOBS).stream()
                                     if d.to_dict().get("job_type") == "test.notify"], message="the follow-up job")
    (follow_up,) = follow_ups
    done = stack.wait_state(follow_up.id, JobState.COMPLETED)
    assert done.checkpoints["record"]["output"] == {"heard": job_id, "state": "completed"}


def test_job_types_starting_each_other_in_a_cycle_are_refused_when_the_app_starts() -> None:
    cyclic = oncetask.App("cyclic")
    for name, then in (("a", "b"), ("b", "c"), ("c", "a")):
        definition = cyclic.job(name, payload=JobEnded, callback=oncetask.Callback(job_type=then))
        definition.stage(lambda ctx: {}, name="run")
    with pytest.raises(oncetask.DefinitionError, match="cycle: a -> b -> c -> a"):
        cyclic.validate()


# Graceful shutdown ---------------------------------------------------------------------------------------------------

def test_a_worker_shutting_down_hands_its_job_to_a_new_task_due_now_and_keeps_nothing_of_the_cut_stage(
        paused: Stack) -> None:
    job_id = paused.submit_ok("test.long", {"seconds": 30}, key="sigterm")
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(
        paused.services.processor.handle(TaskDelivery(job_id, 1, "t"))))
    worker.start()
    wait_until(lambda: paused.artifacts(job_id), message="the stage to be under way")
    SHUTTING_DOWN.set()  # what SIGTERM does
    try:
        worker.join(10)
    finally:
        SHUTTING_DOWN.clear()
    # 200 ends the old task: a 503 would leave the job to its retry, which waits out the queue's backoff.
    assert (outcome[0].status, outcome[0].outcome) == (200, "handed_over")
    job = paused.job(job_id)
    assert (job.state, job.lease_owner, job.attempts, job.generation) == (JobState.QUEUED, None, 0, 2)
    assert paused.artifacts(job_id) == []
    assert job.task_name.rsplit("/", 1)[1] in [name.rsplit("/", 1)[1] for name in paused.tasks()]
    # Had the 200 been lost, the old task's retry finds a newer generation and does nothing.
    assert paused.services.processor.handle(TaskDelivery(job_id, 1, "t", 1)).outcome == "stale_generation"
    hurry.set()
    try:  # the new task takes the job over at once: there is no lease to wait for
        assert paused.services.processor.handle(TaskDelivery(job_id, 2, "t2")).outcome == "completed"
    finally:
        hurry.clear()
    assert paused.job(job_id).fencing == 2 and paused.artifact_problems(job_id) == []
