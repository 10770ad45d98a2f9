"""Scheduling: priority lanes as queues of their own, job types with queues of their own, shards, per-owner quotas,
and recurring schedules fired by Cloud Scheduler, through the real API, the cleanup function and the emulators."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

import oncetask
from oncetask import Context, Lane, Retry
from oncetask.job import JOBS
from oncetask.states import JobState

from .conftest import Stack, mint_token

app = oncetask.App("scheduling-tests", lanes=(Lane("interactive"), Lane("batch", rate=10, concurrency=10, shards=4)))


class Note(BaseModel):
    text: str = ""


quick = app.job("sched.quick", payload=Note)
bulk = app.job("sched.bulk", payload=Note, lane="batch")
picky = app.job("sched.picky", payload=Note, rate=2.0, retry=Retry(max_attempts=5, min_backoff=5, max_backoff=60))
for _definition in (quick, bulk, picky):
    _definition.stage(lambda ctx: {"text": ctx.payload.text}, name="echo")
app.schedule("nightly", cron="0 3 * * *", job_type="sched.quick", payload={"text": "night"})


@pytest.fixture
def sched(make_stack) -> Stack:
    return make_stack(paused=True, apps=(app,))


def queue_of_task(stack: Stack, job_id: str) -> str:
    (name,) = [n for n in stack.tasks() if f"/tasks/{job_id}-" in n]
    return name.split("/queues/")[1].split("/")[0]


def test_each_lane_is_a_queue_of_its_own_and_a_submission_may_pick_another(sched: Stack) -> None:
    prefix = sched.settings.queue_prefix
    quick_job = sched.submit_ok("sched.quick", {}, key="q")
    assert queue_of_task(sched, quick_job) == f"{prefix}-interactive"
    bulk_job = sched.submit_ok("sched.bulk", {}, key="b")
    assert queue_of_task(sched, bulk_job).startswith(f"{prefix}-batch-")
    moved = sched.submit_ok("sched.quick", {}, key="moved", lane="batch")
    assert queue_of_task(sched, moved).startswith(f"{prefix}-batch-")
    assert sched.job(moved).lane == "batch"


def test_a_lanes_shard_is_fixed_by_the_job_so_duplicates_still_meet(sched: Stack) -> None:
    first = sched.api_client.post("/jobs", json={"job_type": "sched.bulk", "payload": {}, "idempotency_key": "s"})
    second = sched.api_client.post("/jobs", json={"job_type": "sched.bulk", "payload": {}, "idempotency_key": "s"})
    assert first.get_json()["job_id"] == second.get_json()["job_id"]
    assert second.get_json()["status"] == "already_queued"
    assert len([n for n in sched.tasks() if first.get_json()["job_id"] in n]) == 1


def test_a_job_type_with_its_own_rate_and_backoff_runs_on_queues_of_its_own(sched: Stack) -> None:
    job_id = sched.submit_ok("sched.picky", {}, key="picky")
    queue = queue_of_task(sched, job_id)
    assert queue == f"{sched.settings.queue_prefix}-interactive-sched-picky"
    config = sched.services.queue.client.get_queue(name=sched.settings.queue_path(queue))
    assert config.rate_limits.max_dispatches_per_second == 2.0
    assert config.retry_config.min_backoff.total_seconds() == 5
    assert sched.services.processor.max_attempts("sched.picky") == 5


def test_an_unknown_lane_is_refused_naming_the_field_and_nothing_is_written(sched: Stack) -> None:
    answer = sched.submit("sched.quick", {}, key="nowhere", lane="express")
    assert answer.status_code == 422 and answer.get_json()["error"]["field"] == "lane"
    assert "interactive" in answer.get_json()["error"]["message"]
    assert list(sched.services.store.client.collection(JOBS).stream()) == [] and sched.tasks() == []


def test_an_owner_past_its_quota_gets_429_naming_the_limit_and_nothing_is_written(make_stack) -> None:
    stack = make_stack(paused=True, apps=(app,), owner_quota=2)
    stack.submit_ok("sched.quick", {}, key="one")
    stack.submit_ok("sched.quick", {}, key="two")
    refused = stack.submit("sched.quick", {}, key="three")
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "QUOTA_EXCEEDED"
    assert "the limit is 2" in refused.get_json()["error"]["message"]
    assert len(list(stack.services.store.client.collection(JOBS).stream())) == 2 and len(stack.tasks()) == 2
    again = stack.submit("sched.quick", {}, key="one")  # a resubmission is not a new job: answered as usual
    assert again.status_code == 202 and again.get_json()["status"] == "already_queued"


def test_a_schedules_run_makes_one_job_however_often_cloud_scheduler_calls(sched: Stack, tasks_emulator,
                                                                          task_target) -> None:
    token = mint_token(tasks_emulator, task_target, sched.settings.scheduler_service_account,
                       sched.settings.cleanup_audience)
    headers = {"Authorization": token, "X-CloudScheduler-ScheduleTime": "2026-12-01T03:00:00.123Z"}
    first = sched.cleanup_client.post("/schedules/nightly", headers=headers)
    retried = sched.cleanup_client.post("/schedules/nightly", headers=headers)
    assert first.status_code == retried.status_code == 200
    assert first.get_json()["job_id"] == retried.get_json()["job_id"]
    assert (first.get_json()["status"], retried.get_json()["status"]) == ("queued", "already_queued")
    job = sched.job(first.get_json()["job_id"])
    assert (job.job_type, job.payload, job.owner) == ("sched.quick", {"text": "night"}, "schedule:nightly")
    next_run = sched.cleanup_client.post("/schedules/nightly", headers={
        **headers, "X-CloudScheduler-ScheduleTime": "2026-12-02T03:00:00Z"})
    assert next_run.get_json()["job_id"] != first.get_json()["job_id"]


def test_a_schedule_call_without_its_time_or_for_no_schedule_is_refused(sched: Stack, tasks_emulator,
                                                                       task_target) -> None:
    token = mint_token(tasks_emulator, task_target, sched.settings.scheduler_service_account,
                       sched.settings.cleanup_audience)
    assert sched.cleanup_client.post("/schedules/nightly", headers={"Authorization": token}).status_code == 400
    missing = sched.cleanup_client.post("/schedules/weekly", headers={
        "Authorization": token, "X-CloudScheduler-ScheduleTime": "2026-12-01T03:00:00Z"})
    assert missing.status_code == 404 and "nightly" in missing.get_json()["error"]["message"]
    assert sched.cleanup_client.post("/schedules/nightly", headers={
        "X-CloudScheduler-ScheduleTime": "2026-12-01T03:00:00Z"}).status_code == 401


@pytest.mark.parametrize(("build", "problem"), [
    (lambda a: a.schedule("bad", cron="every day", job_type="x"), "not a unix-cron expression"),
    (lambda a: a.schedule("tz", cron="0 3 * * *", job_type="x", time_zone="Mars/Olympus"), "unknown time zone"),
    (lambda a: a.job("fast", payload=Note, rate=501), "at most 500"),
    (lambda a: a.job("wide", payload=Note, concurrency=0), "concurrency must be 1"),
    (lambda a: a.job("lost", payload=Note, lane="express"), "lane 'express'"),
    (lambda a: Lane("batch", shards=0), "shards must be 1 to 100"),
])
def test_a_definition_cloud_tasks_or_scheduler_would_refuse_fails_where_it_is_written(build, problem: str) -> None:
    with pytest.raises(oncetask.DefinitionError, match=problem):
        build(oncetask.App("wrong"))


def test_a_schedule_whose_payload_does_not_fit_its_job_type_is_refused_when_the_app_starts() -> None:
    wrong = oncetask.App("wrong-schedule")
    wrong.job("typed", payload=Note).stage(lambda ctx: {}, name="run")
    wrong.schedule("hourly", cron="0 * * * *", job_type="typed", payload={"text": 5})
    with pytest.raises(oncetask.DefinitionError, match="schedule 'hourly': its payload does not fit"):
        wrong.validate()


def test_the_manifest_lists_every_queue_lane_and_schedule_the_infrastructure_creates() -> None:
    manifest = app.manifest()
    names = [q["name"] for q in manifest["queues"]]
    assert names == ["oncetask-interactive", "oncetask-batch-0", "oncetask-batch-1", "oncetask-batch-2",
                     "oncetask-batch-3", "oncetask-interactive-sched-picky", "oncetask-batch-sched-picky-0",
                     "oncetask-batch-sched-picky-1", "oncetask-batch-sched-picky-2", "oncetask-batch-sched-picky-3",
                     "oncetask-callbacks"]
    assert manifest["schedules"] == [{"name": "nightly", "cron": "0 3 * * *", "time_zone": "UTC",
                                      "job_type": "sched.quick", "lane": None}]
    lanes = {t["name"]: t["lane"] for t in manifest["job_types"]}
    assert (lanes["sched.bulk"], lanes["sched.quick"]) == ("batch", "interactive")
