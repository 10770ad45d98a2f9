"""Recovery: cleanup of lapsed leases and lost tasks, a zombie worker fenced off, a killed worker's job resumed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from google.cloud.firestore import SERVER_TIMESTAMP

from fixtures.tasks import wait_until
from oncetask.errors import LeaseLost
from oncetask.job import FAILED_TASKS, RESULTS, Job
from oncetask.jobstore import StaleWrite, field
from oncetask_dev.testjobs import PipelinePayload
from oncetask.lease import lease_lapsed
from oncetask.leasekeeper import LeaseKeeper
from oncetask.processor import Processor, TaskDelivery
from oncetask.stages import Context, JobType, Stage, StageOutput
from oncetask.states import JobState

from .conftest import LEASE_TTL, MAIN, Stack, mint_token

ROOT = Path(__file__).resolve().parents[2]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _as_dead_worker(stack: Stack, job_id: str, lapsed: bool = True, attempts: int = 1) -> Job:
    """Put a queued job in the state a worker leaves when it dies holding the lease (renewed long ago, or just
    now by the server's clock)."""
    job = stack.job(job_id)
    renewed = utcnow() - timedelta(minutes=5) if lapsed else SERVER_TIMESTAMP
    return stack.services.store.update(job, {
        "attempts": attempts, "fencing": job.fencing + 1, "lease_owner": "dead-worker",
        "lease_renewed_at": renewed, "lease_ttl": stack.settings.lease_ttl_seconds, "current_stage": "work"},
        JobState.RUNNING)


def _lease_lapsed(stack: Stack, job_id: str) -> bool:
    job = stack.job(job_id)
    return lease_lapsed(job.lease_renewed_at, job.lease_ttl or stack.settings.lease_ttl_seconds, job.read_time)


def test_cleanup_requeues_a_lapsed_lease_under_a_new_generation_and_it_completes(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="lapsed")
    _as_dead_worker(stack, job_id)
    report = stack.services.cleanup.run()
    assert (report.requeued, report.errors) == (1, 0)
    job = stack.job(job_id)
    assert (job.state, job.generation, job.lease_owner) == (JobState.QUEUED, 2, None)
    assert job.errors[-1]["code"] == "TIMEOUT"
    assert stack.tasks() == [stack.services.queue.name_for(job_id, g, job.incarnation, queue=job.queue) for g in (1, 2)]
    stack.resume()  # the generation-1 task is now stale and does nothing; generation 2 runs the job
    assert stack.wait_state(job_id, JobState.COMPLETED).fencing == 2  # dead worker 1, rescuer 2


def test_cleanup_leaves_a_live_lease_alone(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="alive")
    before = _as_dead_worker(stack, job_id, lapsed=False)
    assert stack.services.cleanup.run().requeued == 0
    assert stack.job(job_id).update_time == before.update_time


def test_a_lapsed_job_with_no_attempts_left_is_failed_by_its_next_delivery_with_a_dead_letter(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="spent")
    _as_dead_worker(stack, job_id, attempts=stack.settings.max_attempts)
    assert stack.services.cleanup.run().requeued == 1  # the cleanup only makes sure a task exists
    outcome = stack.services.processor.handle(TaskDelivery(job_id, 2, "t", 0))
    job = stack.job(job_id)
    assert outcome.outcome == "failed" and job.state is JobState.FAILED and job.errors[-1]["code"] == "TIMEOUT"
    assert job.attempts == stack.settings.max_attempts  # the budget is not exceeded to say so
    assert stack.doc(FAILED_TASKS, job_id)["last_error"]["code"] == "TIMEOUT"


def test_cleanup_requeues_an_orphaned_queued_job_whose_task_was_never_created(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="orphan")
    # The API crashed between the job write and the task create: no task exists for generation 1.
    stack.services.queue.client.delete_task(name=stack.job(job_id).task_name)
    time.sleep(stack.settings.orphan_grace_seconds + 0.1)  # untouched for longer than the grace (server time)
    report = stack.services.cleanup.run()
    assert report.requeued == 1
    assert stack.tasks() == [stack.job(job_id).task_name] and stack.job(job_id).generation == 2


def test_cleanup_leaves_a_queued_job_with_a_live_task_alone(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="waiting")
    time.sleep(stack.settings.orphan_grace_seconds + 0.1)
    report = stack.services.cleanup.run()
    assert (report.requeued, report.scanned) == (0, 1)
    assert stack.job(job_id).generation == 1


def test_overlapping_cleanups_do_not_double_enqueue(make_stack) -> None:
    stack = make_stack(paused=True)
    lapsed = [stack.submit_ok(key=f"overlap-{n}") for n in range(4)]
    for job_id in lapsed:
        _as_dead_worker(stack, job_id)
    with ThreadPoolExecutor(3) as pool:
        reports = list(pool.map(lambda _: stack.services.cleanup.run(), range(3)))
    assert sum(r.requeued for r in reports) == len(lapsed)
    names = stack.tasks()
    for job_id in lapsed:
        job = stack.job(job_id)
        assert job.generation == 2
        assert [n for n in names if job_id in n] == [stack.services.queue.name_for(job_id, g, job.incarnation, queue=job.queue)
                                                     for g in (1, 2)]


def test_cleanup_pages_through_more_lapsed_jobs_than_one_page(make_stack) -> None:
    stack = make_stack(paused=True, cleanup_page_size=2)
    lapsed = [stack.submit_ok(key=f"page-{n}") for n in range(5)]
    for job_id in lapsed:
        _as_dead_worker(stack, job_id)
    assert stack.services.cleanup.run().requeued == 5


def test_cleanup_purges_jobs_results_and_artifacts_past_retention(stack: Stack) -> None:
    job_id = stack.submit_ok(key="old")
    stack.wait_state(job_id, JobState.COMPLETED)
    assert stack.artifacts(job_id)
    report = stack.services.cleanup.run(now=utcnow() + timedelta(days=stack.settings.retention_days, hours=1))
    assert report.purged == 1
    assert stack.services.store.get(job_id) is None and stack.doc(RESULTS, job_id) is None
    assert stack.artifacts(job_id) == []


def test_cleanup_endpoint_answers_its_counts(make_stack, tasks_emulator, task_target) -> None:
    stack = make_stack(paused=True)
    _as_dead_worker(stack, stack.submit_ok(key="http"))
    token = mint_token(tasks_emulator, task_target, stack.settings.scheduler_service_account,
                       stack.settings.cleanup_audience)
    answer = stack.cleanup(Authorization=token)
    assert answer.status_code == 200
    assert answer.get_json() == {"requeued": 1, "purged": 0, "scanned": 1, "errors": 0}


# Zombies ---------------------------------------------------------------------------------------------------

def test_a_zombie_workers_writes_are_refused_and_it_stops(stack: Stack) -> None:
    """A worker pauses past its lease (no heartbeat: a GC pause, a frozen VM); another worker takes the job over.
    When the zombie wakes up, neither its artifacts nor its checkpoints get written."""
    stack.pause()
    job_id = stack.submit_ok(key="zombie")
    wake = threading.Event()
    entered = threading.Event()

    def frozen(ctx: Context) -> StageOutput:
        entered.set()
        wake.wait(10)
        ctx.artifacts.write("prepare.json", b"zombie was here")
        return {"zombie": True}

    pipeline = stack.app.job_types()["test.pipeline"]
    zombie_type = JobType("test.pipeline", PipelinePayload, (Stage("prepare", frozen), *pipeline.stages[1:]))
    zombie_settings = stack.settings.model_copy(update={"heartbeat_seconds": 3600.0})  # it never renews
    zombie = Processor(stack.services.store, stack.services.bucket, zombie_settings, {"test.pipeline": zombie_type})
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(zombie.handle(TaskDelivery(job_id, 1, "z", 0))))
    thread.start()
    assert entered.wait(10)
    wait_until(lambda: _lease_lapsed(stack, job_id), message="the zombie's lease to lapse")

    rescuer = stack.services.processor.handle(TaskDelivery(job_id, 1, "r", 1))
    assert rescuer.outcome == "completed"
    wake.set()
    thread.join(10)
    assert (outcome[0].status, outcome[0].outcome) == (409, "lease_lost")  # not 2xx: its task is retried
    job = stack.job(job_id)
    assert (job.state, job.fencing) == (JobState.COMPLETED, 2)
    bucket = stack.services.bucket
    assert not any(b"zombie" in bucket.blob(name).download_as_bytes() for name in stack.artifacts(job_id))
    assert "zombie" not in job.checkpoints["prepare"]["output"]
    assert stack.artifact_problems(job_id) == []


def test_a_fenced_write_from_an_old_lease_holder_is_refused_by_firestore(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="fence")
    old = _as_dead_worker(stack, job_id)
    taken_over = stack.services.store.update(old, {"fencing": old.fencing + 1, "lease_owner": "new"},
                                             JobState.RUNNING)
    # The old holder still trusts its lease locally (deadline far away): only Firestore's fence stops it.
    keeper = LeaseKeeper(stack.services.store, old, "dead-worker", 60.0, 3600.0, acquired_at_monotonic=1e12)
    with pytest.raises(LeaseLost):
        keeper.write({field("checkpoints", "work"): {"output": {"zombie": True}}})
    with pytest.raises(StaleWrite):
        stack.services.store.update(old, {"current_stage": "finish"})
    assert stack.job(job_id).update_time == taken_over.update_time


# A killed worker ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_worker_killed_mid_stage_is_recovered_and_completed_stages_are_skipped(
        make_stack, handler_server: str, firestore_emulator, tasks_emulator, storage_host: str) -> None:
    project, queue, port = f"test-{uuid.uuid4().hex[:12]}", f"q{uuid.uuid4().hex[:10]}", _free_port()
    worker_url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "ONCETASK_PROJECT_ID": project, "ONCETASK_QUEUE_PREFIX": queue,
           "ONCETASK_TASK_HANDLER_URL": worker_url, "ONCETASK_OIDC_CERTS_URL": tasks_emulator.certs_url,
           "ONCETASK_LEASE_TTL_SECONDS": str(LEASE_TTL), "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
           "CLOUD_TASKS_EMULATOR_HOST": tasks_emulator.host, "STORAGE_EMULATOR_HOST": storage_host,
           "PYTHONPATH": str(ROOT / "tests")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "functions_framework", "--target", "process_task", "--source", MAIN,
         "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: _accepts(port), timeout=20, message="the worker process to listen")
        doomed = make_stack(ONCETASK_PROJECT_ID=project, queue_prefix=queue, task_handler_url=worker_url)
        job_id = doomed.submit_ok(payload={"sleep_ms": 300}, key="killed")
        wait_until(lambda: stack_stage(doomed, job_id) == "work", message="the worker to be inside stage work")
        os.killpg(worker.pid, signal.SIGKILL)  # the whole process group: gunicorn's master and its workers
        worker.wait(10)
        before = doomed.job(job_id)
        assert before.state is JobState.RUNNING and sorted(before.checkpoints) == ["prepare"]
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)

    # A live handler and the scheduled cleanup take over.
    live = make_stack(create_queue=False, ONCETASK_PROJECT_ID=project, queue_prefix=queue)
    wait_until(lambda: _lease_lapsed(live, job_id), message="the dead worker's lease to lapse")
    assert live.services.cleanup.run().requeued == 1
    job = live.wait_state(job_id, JobState.COMPLETED)
    assert job.checkpoints["prepare"] == before.checkpoints["prepare"]  # skipped, not rerun
    assert job.checkpoints["work"]["attempt"] == 2
    assert "TIMEOUT" in [e["code"] for e in job.errors]
    assert live.artifact_problems(job_id) == []
    assert [name.split("/")[2] for name in live.artifacts(job_id)] == ["finish", "prepare", "work"]


def stack_stage(stack: Stack, job_id: str) -> str | None:
    return stack.job(job_id).current_stage


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0



def test_the_cancel_of_a_job_whose_worker_died_is_finished_by_the_delivery_cleanup_enqueues(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="cancel-dead")
    job = _as_dead_worker(stack, job_id)
    stack.services.bucket.blob(f"jobs/{job_id}/work/1-0a0a0a0a/partial").upload_from_string(b"half")
    stack.services.store.update(job, {"cancel_requested": True})
    assert stack.services.cleanup.run().requeued == 1
    assert stack.services.processor.handle(TaskDelivery(job_id, 2, "t", 0)).outcome == "cancelled"
    assert stack.job(job_id).state is JobState.CANCELLED and stack.artifacts(job_id) == []
