"""The Firestore and Cloud Tasks emulators crash (SIGKILL) and come back on their data directories mid-run."""

from __future__ import annotations

import threading
import time

from oncetask.job import JOBS
from oncetask_dev.stack import LocalStack

from .conftest import Api, unique
from .invariants import Observer, wait_for
from .workers import find_holder


def test_firestore_and_tasks_emulators_killed_and_restarted_mid_run_lose_no_accepted_job(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    ids = [api.submit_ok(unique("restart"), sleep_ms=250) for _ in range(10)]
    before = stack.pids()
    accepted: list[str] = []
    answers: list[int] = []
    stop = threading.Event()

    def keep_submitting() -> None:
        # Submissions go on through the outages: every one the API accepted (202) must be kept.
        while not stop.is_set():
            status, body = api.submit(unique("during"), sleep_ms=100)
            answers.append(status)
            if status == 202:
                accepted.append(body["job_id"])

    submitter = threading.Thread(target=keep_submitting, name="submitter", daemon=True)
    submitter.start()
    try:
        wait_for(lambda: find_holder(stack, observer.docs(JOBS, ids)) is not None, 20, "a job to be mid-stage")
        stack.kill("firestore")  # a crash, not a clean stop: what was committed must be on disk already
        stack.restart("firestore")
        wait_for(lambda: find_holder(stack, observer.docs(JOBS, ids)) is not None, 20, "a job mid-stage again")
        stack.kill("tasks")
        stack.restart("tasks")
        time.sleep(0.5)  # submissions against the restarted queue too
    finally:
        stop.set()
        submitter.join(timeout=40)

    after = stack.pids()
    assert after["firestore"] != before["firestore"] and after["tasks"] != before["tasks"]
    assert accepted, f"no submission was accepted around the restarts (answers: {answers})"
    snap = observer.assert_invariants([*ids, *accepted], timeout=90)
    assert snap.states() == {"completed": len(ids) + len(accepted)}
