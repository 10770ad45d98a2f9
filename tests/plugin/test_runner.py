"""The in-process runner (`oncetask_dev.testing.Runner`, what the `oncetask_runner` fixture gives) on the session's
emulators: deliveries through the real processor until the job ends, retries, limits, isolation, clear errors."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import oncetask
from fixtures.firestore import FirestoreEmulator
from fixtures.storage import StorageEmulator
from fixtures.tasks import TasksEmulator, wait_until
from oncetask import JobState
from oncetask_dev import testjobs
from oncetask_dev.testing import (Emulator, Emulators, RunLimitReached, Runner, RunnerRefused, Submission,
                                  settings_with)


@pytest.fixture
def emulators(firestore_emulator: FirestoreEmulator, tasks_emulator: TasksEmulator,
              storage_emulator: StorageEmulator) -> Emulators:
    """The suite's own emulators, as the plugin's `oncetask_emulators` would give them."""
    return Emulators(Emulator("firestore", firestore_emulator.host, firestore_emulator.http or "",
                              firestore_emulator.process),  # type: ignore[arg-type]
                     Emulator("tasks", tasks_emulator.host, tasks_emulator.http, tasks_emulator.process),
                     Emulator("storage", storage_emulator.host, storage_emulator.host[7:], storage_emulator.process))


@pytest.fixture
def make_runner(emulators: Emulators) -> Callable[..., Runner]:
    made: list[Runner] = []

    def make(app: oncetask.App = testjobs.app, **settings: object) -> Runner:
        runner = Runner(app, emulators, **settings)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()


def pipeline(**payload: object) -> dict[str, object]:
    return {"fail_stage": "work", **payload}


def test_a_transient_failure_is_delivered_again_at_once_until_the_job_completes(
        make_runner: Callable[..., Runner]) -> None:
    runner = make_runner()
    job = runner.submit("test.pipeline", pipeline(fail_times=2))
    done = runner.run(job)
    assert [(d.status, d.outcome) for d in done.deliveries] == [(424, "retrying"), (424, "retrying"),
                                                                 (200, "completed")]
    assert (done.state, done.attempts, [e["code"] for e in done.errors]) == (
        JobState.COMPLETED, 3, ["INJECTED_FAILURE", "INJECTED_FAILURE"])
    assert sorted(runner.result(job)) == ["finish", "prepare", "work"]


def test_a_job_out_of_attempts_ends_failed_with_its_dead_letter(make_runner: Callable[..., Runner]) -> None:
    runner = make_runner(max_attempts=2)
    job = runner.submit("test.pipeline", pipeline(fail_times=5))
    done = runner.run(job)
    assert (done.state, len(done.deliveries), done.deliveries[-1].status) == (JobState.FAILED, 2, 200)
    letter = runner.dead_letter(job)
    assert letter is not None and letter["last_error"]["code"] == "INJECTED_FAILURE"
    assert runner.result(job) is None


def test_run_gives_up_after_its_delivery_limit_naming_the_state_and_error(make_runner: Callable[..., Runner]) -> None:
    runner = make_runner(max_attempts=-1)
    job = runner.submit("test.pipeline", pipeline(fail_times=50))
    with pytest.raises(RunLimitReached) as stopped:
        runner.run(job, max_deliveries=3)
    assert f"job {job.job_id} (test.pipeline) is still retrying after 3 deliveries" in str(stopped.value)
    assert "INJECTED_FAILURE" in str(stopped.value)


def test_a_job_another_worker_holds_is_waited_for_and_never_run_twice(make_runner: Callable[..., Runner]) -> None:
    runner = make_runner()
    job = runner.submit("test.pipeline", pipeline(sleep_ms=700))
    worker = threading.Thread(target=runner.deliver, args=(job,))
    worker.start()
    try:
        wait_until(lambda: runner.job(job).state is JobState.RUNNING, message="the worker to take the job")
        with pytest.raises(RunLimitReached, match="last outcome 'busy'.*a lease holds it until it lapses"):
            runner.run(job, timeout=0.2)
        done = runner.run(job)
    finally:
        worker.join()
    assert done.state is JobState.COMPLETED and done.attempts == 1
    assert {d.outcome for d in done.deliveries} <= {"busy"}


def test_a_task_answered_2xx_leaves_the_queue_as_in_cloud_tasks(make_runner: Callable[..., Runner]) -> None:
    runner = make_runner()
    job = runner.submit("noop", {"note": "hi"}, key="k")
    queue = runner.app.services.queue.client
    parent = job.task_name.rsplit("/tasks/", 1)[0]  # the job's lane's queue
    assert [t.name for t in queue.list_tasks(parent=parent)] == [job.task_name]
    assert runner.run(job).outputs == {"noop": {"note": "hi"}}
    assert list(queue.list_tasks(parent=parent)) == []


def test_a_cancelled_waiting_job_is_finished_without_a_delivery(make_runner: Callable[..., Runner]) -> None:
    runner = make_runner()
    job = runner.submit("noop", {})
    assert runner.cancel(job).status == "cancelled"
    done = runner.run(job)
    assert (done.state, done.deliveries) == (JobState.CANCELLED, ())


def test_each_runner_has_its_own_project_and_leaves_the_app_as_it_was(make_runner: Callable[..., Runner]) -> None:
    app = oncetask.App("mine").include(testjobs.app)
    first, second = make_runner(app), make_runner(app, max_attempts=7)
    job = first.submit("noop", {}, key="same")
    assert first.run(job).state is JobState.COMPLETED
    with pytest.raises(LookupError, match=f"no job '{job.job_id}' in this test's project"):
        second.job(job)
    assert second.submit("noop", {}, key="same").status == "queued"  # the same ID, another project: another job
    assert first.settings.project_id != second.settings.project_id and second.settings.max_attempts == 7
    assert app._settings is None  # not configured, not even read: the runners configured copies


def test_refusals_carry_the_status_code_and_field_the_api_would_answer(make_runner: Callable[..., Runner]) -> None:
    runner = make_runner()
    with pytest.raises(RunnerRefused) as refused:
        runner.submit("test.pipeline", {"sleep_ms": "slow"})
    assert (refused.value.status, refused.value.code, refused.value.field) == (422, "INVALID_ARGUMENT",
                                                                               "payload.sleep_ms")
    for payload, key, field in (([1, 2], None, "payload"), ({}, "k" * 257, "idempotency_key")):
        with pytest.raises(RunnerRefused) as refused:
            runner.submit("noop", payload, key=key)  # type: ignore[arg-type]
        assert (refused.value.status, refused.value.field) == (422, field)
    with pytest.raises(RunnerRefused) as refused:
        runner.retry(runner.submit("noop", {}))
    assert (refused.value.status, refused.value.code) == (409, "CONFLICT")
    with pytest.raises(RunnerRefused) as refused:
        runner.cancel(Submission("f" * 32, "queued"))
    assert refused.value.status == 404


def test_missing_objects_and_unknown_settings_are_named(make_runner: Callable[..., Runner]) -> None:
    runner = make_runner()
    missing = f"gs://{runner.bucket.name}/nothing.bin"
    with pytest.raises(FileNotFoundError, match=f"no object at {missing}"):
        runner.read(missing)
    with pytest.raises(TypeError, match=r"unknown settings \['max_atempts'\]"):
        make_runner(max_atempts=2)
    with pytest.raises(ValueError, match="stage_timeout_seconds"):
        settings_with(oncetask.Settings(), stage_timeout_seconds=1e6)


def test_stage_by_stage_runs_each_stage_with_the_outputs_before_it(make_runner: Callable[..., Runner]) -> None:
    runner = make_runner()
    stages = runner.stages("test.pipeline", {})
    with pytest.raises(LookupError, match=r"stage 'work' needs the outputs of \['prepare'\]"):
        stages.run("work")
    stages.run("prepare")
    output = stages.run("work")
    assert runner.read(output["artifact"]) == b'{"stage": "work", "inputs": ["prepare"]}'
    assert output["artifact"] == stages.uri("work", "work.json")
    with pytest.raises(LookupError, match="has no stage 'publish'"):
        stages.run("publish")
    with pytest.raises(RunnerRefused, match="payload.fail_times"):
        runner.stages("test.pipeline", {"fail_times": -1})


def test_a_parent_waiting_for_its_children_gets_them_run_and_is_woken_by_them(
        make_runner: Callable[..., Runner]) -> None:
    runner = make_runner()
    job = runner.submit("test.fanout", {"parts": 3})
    done = runner.run(job)
    assert done.state is JobState.COMPLETED and done.outputs["stitch"]["total"] == 0 + 10 + 20
    assert [d.outcome for d in done.deliveries] == ["waiting", "completed"]


def test_a_child_failing_for_good_fails_its_parent_under_the_fail_policy_and_the_run_ends(
        make_runner: Callable[..., Runner]) -> None:
    app = oncetask.App("family")
    part = app.job("family.part", payload=testjobs.PartPayload)
    whole = app.job("family.whole", payload=testjobs.FanoutPayload)

    @part.stage
    def work(ctx: oncetask.Context[testjobs.PartPayload]) -> dict:
        if ctx.payload.index == 1:
            raise oncetask.PermanentError("BAD_PART", "part 1 cannot be done")
        return {"index": ctx.payload.index}

    @whole.stage
    def split(ctx: oncetask.Context[testjobs.FanoutPayload]) -> dict:
        return {"ids": ctx.start_children(part, [testjobs.PartPayload(index=i) for i in range(ctx.payload.parts)])}

    @whole.stage
    def stitch(ctx: oncetask.Context[testjobs.FanoutPayload]) -> dict:
        raise AssertionError("a parent whose child failed under 'fail' must not stitch")

    runner = make_runner(app)
    job = runner.submit("family.whole", {"parts": 3})
    done = runner.run(job)
    assert done.state is JobState.FAILED and done.error["code"] == "CHILD_FAILED"
    ids = done.outputs["split"]["ids"]
    assert [runner.job(i).state for i in ids[:2]] == [JobState.COMPLETED, JobState.FAILED]
    # The child not run yet is told to stop by its failing parent, and ends cancelled at its delivery, unrun.
    assert runner.job(ids[2]).cancel_requested
    stopped = runner.run(ids[2])
    assert (stopped.state, stopped.completed_stages) == (JobState.CANCELLED, [])
