"""The Firestore and Cloud Tasks emulators crash (SIGKILL) and come back on their data directories mid-run."""

from __future__ import annotations

import threading

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
    refusals: list[AssertionError] = []
    stop = threading.Event()

    def keep_submitting() -> None:
        # Submissions go on through the outages, each repeated (same key) while refused with 503, as a client
        # would: every one the API accepted (202) must be kept, and none may stay refused.
        while not stop.is_set():
            try:
                accepted.append(api.submit_until_accepted(unique("during"), sleep_ms=200))
            except AssertionError as refusal:  # reported below, in the test's own thread
                refusals.append(refusal)
                return

    submitter = threading.Thread(target=keep_submitting, name="submitter", daemon=True)
    submitter.start()
    try:
        mid_stage = lambda: find_holder(stack, observer.docs(JOBS, [*ids, *accepted])) is not None  # noqa: E731
        wait_for(mid_stage, 20, "a job to be mid-stage")
        stack.kill("firestore")  # a crash, not a clean stop: what was committed must be on disk already
        stack.restart("firestore")
        wait_for(mid_stage, 20, "a job mid-stage again")
        stack.kill("tasks")
        stack.restart("tasks")
        so_far = len(accepted)
        wait_for(lambda: len(accepted) >= so_far + 3 or bool(refusals), 30, "submissions to the restarted stack")
    finally:
        stop.set()
        submitter.join(timeout=40)

    after = stack.pids()
    assert after["firestore"] != before["firestore"] and after["tasks"] != before["tasks"]
    assert not refusals, refusals
    assert accepted, "no submission was accepted around the restarts"
    snap = observer.assert_invariants([*ids, *accepted], timeout=90)
    assert snap.states() == {"completed": len(ids) + len(accepted)}
