"""Several cleanup runs at once, over jobs whose worker died, while other jobs are being processed."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from oncetask.clients import tasks_client
from oncetask.job import JOBS
from oncetask.jobstore import JobStore
from oncetask_dev.testjobs import STAGE_RUNS
from oncetask.states import JobState
from oncetask_dev.scheduler import SCHEDULER_QUEUE, cleanup_task
from oncetask_dev.stack import LocalStack

from .conftest import Api, unique
from .invariants import Observer, wait_for
from .workers import owner_pid, signal_worker, wait_for_holder

CONCURRENT_RUNS = 8  # the cleanup function serves 8 requests at once (gunicorn threads)


def test_concurrent_cleanup_runs_requeue_each_dead_workers_job_once_and_leave_live_leases_alone(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    s = stack.settings()
    tasks = tasks_client(s)
    parent = f"projects/{s.project_id}/locations/{s.location}"
    scheduler_queue = f"{parent}/queues/{SCHEDULER_QUEUE}"
    # Cloud Scheduler never overlaps itself; overlapping runs come from a slow run meeting the next tick, or an
    # operator's manual run. This queue lets CONCURRENT_RUNS real, token-bearing cleanup calls fly at once.
    stampede = tasks.create_queue(parent=parent, queue={
        "name": f"{parent}/queues/{unique('stampede')}", "retry_config": {"max_attempts": 1},
        "rate_limits": {"max_concurrent_dispatches": CONCURRENT_RUNS, "max_dispatches_per_second": 500}}).name

    ids = [api.submit_ok(unique("cleanup"), sleep_ms=500) for _ in range(12)]  # ~4 per worker
    holder = wait_for_holder(stack, lambda: observer.docs(JOBS, ids))
    signal_worker(stack, holder.pid, signal.SIGKILL)
    # Hold back everything that could take the dead worker's jobs first: their tasks' retries and the scheduler.
    tasks.pause_queue(name=stack.lane_queue())
    tasks.pause_queue(name=scheduler_queue)
    try:
        jobs = observer.docs(JOBS, ids)
        victims = {i: j for i, j in jobs.items() if j.get("state") == "running"
                   and owner_pid(j.get("lease_owner") or "x-0-x") == holder.pid}
        assert victims, "the killed worker held no lease any more"
        created_before = observer.tasks_stats()["tasks_created_by_queue"].get(stack.lane_queue(), 0)
        lapse = max(j["lease_renewed_at"] + timedelta(seconds=j["lease_ttl"]) for j in victims.values())
        wait_for(lambda: datetime.now(timezone.utc) > lapse, 10, "the dead worker's leases to lapse")

        # All the runs are queued first and released at once, so they start together and race for the same jobs.
        task = cleanup_task(stack.cleanup_url, s.cleanup_audience, s.scheduler_service_account)
        tasks.pause_queue(name=stampede)
        with ThreadPoolExecutor(max_workers=CONCURRENT_RUNS) as pool:
            list(pool.map(lambda _: tasks.create_task(parent=stampede, task=task), range(CONCURRENT_RUNS)))
        tasks.resume_queue(name=stampede)
        wait_for(lambda: observer.tasks_stats()["queues"][stampede]["pending"] == 0, 20, "every cleanup run to end")

        after = observer.docs(JOBS, victims)
        for job_id, job in after.items():
            timeouts = [e for e in job["errors"] if e["code"] == "TIMEOUT"]
            assert (job["state"], job["generation"], len(timeouts)) == ("queued", 2, 1), (job_id, job)
        requeues = observer.tasks_stats()["tasks_created_by_queue"][stack.lane_queue()] - created_before
        assert requeues == len(victims), f"{requeues} tasks for {len(victims)} recovered jobs"
        # Whether the losers' fenced writes were refused ("left alone") or they came late and found nothing stale
        # depends on the machine's scheduling; tests/processor/test_recovery.py overlaps runs deterministically.
    finally:
        tasks.resume_queue(name=stack.lane_queue())
        tasks.resume_queue(name=scheduler_queue)

    snap = observer.assert_invariants(ids, timeout=60)
    assert snap.states() == {"completed": len(ids)}
    survivors = [job for job_id, job in snap.jobs.items() if job_id not in victims]
    # Cleanup ran (six times at once, then every second) while these were processed: it never took a live lease.
    assert all(job["generation"] == 1 and job["attempts"] == 1 for job in survivors), survivors


def test_a_dead_workers_job_with_no_attempts_left_is_failed_and_keeps_no_artifact_of_its_unfinished_stage(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    s = stack.settings()
    tasks = tasks_client(s)
    tasks.pause_queue(name=stack.lane_queue())  # the job must not run: we set the scene its last worker left
    try:
        job_id = api.submit_ok(unique("spent"), sleep_ms=0)
        store = JobStore(observer.db)
        job = store.get(job_id)
        assert job is not None
        # Its last allowed attempt finished `prepare`'s work (artifact and run marker) and died before the
        # checkpoint; its lease has lapsed.
        attempt = s.max_attempts
        store.update(job, {"attempts": attempt, "fencing": attempt, "lease_owner": "dead-worker",
                           "lease_renewed_at": datetime.now(timezone.utc) - timedelta(minutes=1),
                           "lease_ttl": s.lease_ttl_seconds, "current_stage": "prepare"},
                     JobState.RUNNING)
        partial = f"jobs/{job_id}/prepare/{attempt}-0a0a0a0a/prepare.json"
        observer.storage.bucket(s.bucket).blob(partial).upload_from_string(b"{}")
        observer.db.collection(STAGE_RUNS).add({"job_id": job_id, "stage": "prepare", "attempt": attempt,
                                                "checkpoint_attempt_at_start": None,
                                                "at": datetime.now(timezone.utc)})
        stack.trigger_cleanup(wait=20)  # it enqueues the job again; the delivery ends it, for want of attempts
    finally:
        tasks.resume_queue(name=stack.lane_queue())
    snap = observer.assert_invariants([job_id], timeout=20)
    assert snap.states() == {"failed": 1}
    assert snap.dead_letters[job_id]["last_error"]["code"] == "TIMEOUT"
