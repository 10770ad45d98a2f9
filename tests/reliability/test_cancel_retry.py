"""Cancel and manual retry requests racing with the workers processing the same jobs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from oncetask.job import JOBS
from oncetask.states import TERMINAL
from oncetask_dev.stack import LocalStack

from .conftest import Api, unique
from .invariants import Observer, wait_for

RACING_JOBS = 14
RETRIES_AT_ONCE = 5
TERMINAL_STATES = {state.value for state in TERMINAL}


# When each cancel is sent, by what the job is doing then (or as soon as it is past that point).
CANCEL_WHEN: dict[str, Callable[[dict[str, Any]], bool]] = {
    "at_once": lambda job: True,  # queued, or just taken by a worker
    "mid_stage": lambda job: job.get("state") == "running" and job.get("current_stage") in ("prepare", "work"),
    "last_stage": lambda job: job.get("state") == "running" and job.get("current_stage") == "finish",  # vs commit
    "completed": lambda job: job.get("state") == "completed",
}


def test_cancels_racing_processing_end_each_job_as_the_cancel_answer_said(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    ids = [api.submit_ok(unique("cancel"), sleep_ms=150) for _ in range(RACING_JOBS)]
    moments = [list(CANCEL_WHEN)[i % len(CANCEL_WHEN)] for i in range(RACING_JOBS)]

    def cancel_when(job_id: str, moment: str) -> tuple[str, int, dict[str, Any]]:
        due = CANCEL_WHEN[moment]
        wait_for(lambda: (job := observer.job(job_id)).get("state") in TERMINAL_STATES or due(job), 30,
                 f"job {job_id} to reach the moment {moment}", interval=0.01)
        return (job_id, *api.cancel(job_id))

    with ThreadPoolExecutor(max_workers=RACING_JOBS) as pool:
        answers = list(pool.map(cancel_when, ids, moments))

    snap = observer.assert_invariants(ids, timeout=60)
    said = Counter(body.get("status") if status == 202 else status for _, status, body in answers)
    for job_id, status, body in answers:
        final = snap.jobs[job_id]["state"]
        if status == 202:  # accepted: the job stops, whether it was waiting or a worker was mid-stage
            assert final == "cancelled", (job_id, body, final)
        else:  # refused: it had finished first, and says so
            assert (status, final) == (409, "completed"), (job_id, status, body, final)
    assert said["cancel_requested"] > 0, f"no cancel met a running job: {said}"
    assert said[409] > 0, f"no cancel came after completion: {said}"


def test_concurrent_manual_retries_of_a_failed_job_requeue_it_once_and_it_resumes(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    # `work` fails permanently on the first attempt only: the job fails with a dead letter, a retry succeeds.
    ids = [api.submit_ok(unique("retry"), sleep_ms=50, fail_kind="permanent", fail_times=1) for _ in range(4)]
    failed = observer.assert_invariants(ids, timeout=30)
    assert failed.states() == {"failed": len(ids)} and len(failed.dead_letters) == len(ids)
    queue = stack.lane_queue()  # test.pipeline runs in the default lane
    created_before = observer.tasks_stats()["tasks_created_by_queue"][queue]

    with ThreadPoolExecutor(max_workers=RETRIES_AT_ONCE * len(ids)) as pool:
        answers = list(pool.map(lambda job_id: (job_id, *api.retry(job_id)), ids * RETRIES_AT_ONCE))
    # More retries while the retried runs are being processed: none may start a second run.
    wait_for(lambda: any(j.get("state") == "running" for j in observer.docs(JOBS, ids).values()), 20,
             "a retried job to run")
    answers += [(job_id, *api.retry(job_id)) for job_id in ids]

    for job_id in ids:
        statuses = Counter(status for j, status, _ in answers if j == job_id)
        assert statuses[202] == 1 and statuses[409] == len([a for a in answers if a[0] == job_id]) - 1, statuses
    snap = observer.assert_invariants(ids, timeout=30)
    assert snap.states() == {"completed": len(ids)}
    assert observer.tasks_stats()["tasks_created_by_queue"][queue] - created_before == len(ids)
    for job in snap.jobs.values():
        # It resumed: `prepare` kept its first-attempt checkpoint, `work` and `finish` ran once more.
        assert job["generation"] == 2 and job["checkpoints"]["prepare"]["attempt"] == 1
        assert job["checkpoints"]["work"]["attempt"] == 2
