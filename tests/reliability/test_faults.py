"""Injected gRPC faults (UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED, slow calls) on both emulators, and target
answers that look failed or slow, at rates that force retries at every level."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from oncetask_dev.stack import LocalStack

from .conftest import MAIN_ENV, TASKS_ARGS, Api, start_stack, unique
from .invariants import Observer

FIRESTORE_FAULTS = "UNAVAILABLE:0.05,ABORTED:0.04,DEADLINE_EXCEEDED:0.03,DELAY:50ms:0.1"
TASKS_FAULTS = "UNAVAILABLE:0.15,DEADLINE_EXCEEDED:0.15,DELAY:30ms:0.2"  # it gets few calls: higher rates
# The seed fixes which calls fail. Every call takes its chances, the stack's own creation of its queues too (it
# retries them, as Terraform does).
TASKS_SEED = 3
TARGET_FAULTS = "FAIL:0.1,SLOW:300ms:0.1"  # FAIL: Cloud Tasks sees a 503 the handler never sent
# With 9 the third and fourth dispatches draw a FAIL and a SLOW: both fire however few retries the run needs.
TARGET_SEED = 9
JOBS_UNDER_FAULTS = 16
# Every lease a job loses (a heartbeat starved on a loaded machine with the suite's 2 s lease, cleanup every
# second) costs it an attempt, rightly. The claim below is that transient faults never fail a job while attempts
# remain, so give it attempts to spare. With the suite's 6, one job of 16 ended failed in one full-suite run
# (not reproduced in 20 runs alone or with the cores saturated; spent attempts is the likeliest reading). A
# misclassified, permanent fault would still fail its job at once whatever this number, and the assertion
# prints the failed jobs' error histories.
ATTEMPTS_UNDER_FAULTS = "20"


@pytest.fixture(scope="module")
def faulty_stack() -> Iterator[LocalStack]:
    stack = start_stack(env={**MAIN_ENV, "ONCETASK_MAX_ATTEMPTS": ATTEMPTS_UNDER_FAULTS}, emulator_args={
        "firestore": ("--fault", FIRESTORE_FAULTS, "--fault-seed", "3"),
        "tasks": (*TASKS_ARGS, "--fault", TASKS_FAULTS, "--fault-seed", str(TASKS_SEED),
                  "--target-fault", TARGET_FAULTS, "--target-fault-seed", str(TARGET_SEED)),
    })
    try:
        yield stack
    finally:
        stack.stop()


def test_injected_unavailable_aborted_deadline_and_slow_calls_force_retries_and_lose_nothing(
        faulty_stack: LocalStack) -> None:
    api = Api(faulty_stack.api_url)
    observer = Observer(faulty_stack)
    keys = [unique("faults") for _ in range(JOBS_UNDER_FAULTS)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda key: api.submit_until_accepted(key, sleep_ms=50), keys))
    assert len(set(ids)) == JOBS_UNDER_FAULTS

    snap = observer.assert_invariants(ids, timeout=120)
    # A transient fault never makes a job fail here: the attempts it is given outlast the fault rates.
    failed = {job_id: job.get("errors") for job_id, job in snap.jobs.items() if job.get("state") != "completed"}
    assert snap.states() == {"completed": JOBS_UNDER_FAULTS}, failed

    firestore_faults = observer.firestore_stats()["faults"]
    tasks = observer.tasks_stats()
    for name in ("UNAVAILABLE", "ABORTED", "DEADLINE_EXCEEDED", "DELAY"):
        assert firestore_faults.get(name, 0) > 0, f"no {name} was injected by Firestore: {firestore_faults}"
    for name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "DELAY"):
        assert tasks["faults"].get(name, 0) > 0, f"no {name} was injected by Cloud Tasks: {tasks['faults']}"
    assert tasks["target_faults"].get("FAIL", 0) > 0 and tasks["target_faults"].get("SLOW", 0) > 0
    # The faults forced retries: of task attempts (a FAIL is a failed attempt) and of whole job attempts.
    assert tasks["failed_attempts"] > 0
