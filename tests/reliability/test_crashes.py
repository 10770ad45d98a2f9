"""Handler workers that crash (SIGKILL) or freeze (SIGSTOP) in the middle of a stage, while jobs run."""

from __future__ import annotations

import os
import signal
import time

from oncetask.job import JOBS
from oncetask_dev.stack import LocalStack

from .conftest import LEASE_TTL, Api, unique
from .invariants import Observer, wait_for
from .workers import children_of, kill_holders, signal_worker, wait_for_holder

JOBS_UNDER_FIRE = 8
KILLS = 4
MAX_KILLS_PER_JOB = 2  # each kill costs the job an attempt: leave it attempts to finish


def test_handler_workers_killed_mid_stage_repeatedly_lose_no_job_and_finish_no_stage_twice(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    ids = [api.submit_ok(unique("kill"), sleep_ms=300) for _ in range(JOBS_UNDER_FIRE)]
    master = stack.pids()["task_handler"]
    kills = kill_holders(stack, lambda: observer.docs(JOBS, ids), observer.job, KILLS, MAX_KILLS_PER_JOB,
                         after_kill=lambda holder: wait_for(lambda: holder.pid not in children_of(master), 10,
                                                            f"worker {holder.pid} to be reaped"))

    assert len(kills) == KILLS, f"only {len(kills)} workers could be killed mid-stage: {kills}"
    snap = observer.assert_invariants(ids, timeout=90)
    assert snap.states() == {"completed": JOBS_UNDER_FIRE}
    for kill in kills:  # each killed job was taken over under a newer fencing token
        assert snap.jobs[kill.job_id]["fencing"] > kill.fencing
    assert stack.deaths == [], "the handler itself (gunicorn's master) must survive its workers' deaths"


def test_handler_paused_past_its_lease_is_fenced_off_when_it_resumes(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    job_id = api.submit_ok(unique("pause"), sleep_ms=800)
    holder = wait_for_holder(stack, lambda: observer.docs(JOBS, [job_id]))
    ref = observer.db.collection(JOBS).document(job_id)
    signal_worker(stack, holder.pid, signal.SIGSTOP)
    try:
        # Frozen, it cannot renew: its lease lapses, cleanup re-enqueues the job (or the task's retry after its
        # dispatch deadline takes it over) and another worker finishes it.
        wait_for(lambda: observer.job(job_id).get("state") == "completed", 30,
                 lambda: f"another worker to complete the job: {observer.job(job_id)}")
        finished = ref.get()
    finally:
        os.kill(holder.pid, signal.SIGCONT)
    assert finished.to_dict()["fencing"] > holder.fencing

    # Resumed, the old worker finds its lease gone and stops without writing: its own local deadline refuses
    # first (in practice it never reaches Firestore), and Firestore's update_time fence would refuse next.
    handler = stack.children["task_handler"]
    wait_for(lambda: any(job_id in line and "lease lost" in line for line in list(handler.output)), 10,
             "the resumed worker to report its lease lost")
    time.sleep(LEASE_TTL / 3)  # one more heartbeat period: a late write would land now
    assert ref.get().update_time == finished.update_time, "the resumed worker changed the finished job"
    snap = observer.assert_invariants([job_id], timeout=10)
    assert not [r for r in snap.runs if r["attempt"] == holder.fencing and r["stage"] == holder.stage]



def test_a_handler_worker_stopped_with_sigterm_hands_its_job_over_and_gives_the_attempt_back(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    # Cloud Run sends SIGTERM before it stops an instance; gunicorn's worker must reach our hook, not only its own.
    job_id = api.submit_ok(unique("term"), sleep_ms=1500)
    holder = wait_for_holder(stack, lambda: observer.docs(JOBS, [job_id]))
    attempts = observer.job(job_id)["attempts"]
    signal_worker(stack, holder.pid, signal.SIGTERM)
    handler = stack.children["task_handler"]
    wait_for(lambda: any(job_id in line and "job handed over" in line for line in list(handler.output)), 10,
             "the stopping worker to hand its job over")
    snap = observer.assert_invariants([job_id], timeout=30)
    job = snap.jobs[job_id]
    assert job["state"] == "completed" and job["fencing"] > holder.fencing
    assert job["attempts"] == attempts  # the cut-short run cost nothing: the next one is the same attempt again
    assert stack.deaths == []
