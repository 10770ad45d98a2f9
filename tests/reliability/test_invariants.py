"""The invariant checker itself (pure, no server): each broken promise is reported, a sound job is not.

The scenarios pass only if `violations()` finds nothing, so it must be shown to find what it looks for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from .invariants import Snapshot, violations

BUCKET = "b"
JOB = "j1"
ENDED = datetime(2026, 1, 1, tzinfo=timezone.utc)
BEFORE = ENDED - timedelta(seconds=1)


def uri(stage: str) -> str:
    return f"gs://{BUCKET}/jobs/{JOB}/{stage}/1-0a0a0a0a/{stage}.json"


def completed_job(**changes: Any) -> dict[str, Any]:
    checkpoints = {s: {"output": {"artifact": uri(s)}, "artifacts": [uri(s)], "attempt": 1}
                   for s in ("prepare", "work", "finish")}
    return {"job_type": "test.pipeline", "state": "completed", "checkpoints": checkpoints, "attempts": 1,
            "state_changed_at": ENDED, **changes}


def snapshot(job: dict[str, Any] | None = None, results: bool = True, dead_letter: bool = False,
             runs: list[tuple[str, int, int | None]] | None = None, objects: set[str] | None = None,
             created: datetime = BEFORE, result_outputs: dict[str, Any] | None = None) -> Snapshot:
    job = completed_job() if job is None else job
    runs = [("prepare", 1, None), ("work", 1, None), ("finish", 1, None)] if runs is None else runs
    objects = {uri(s) for s in ("prepare", "work", "finish")} if objects is None else objects
    outputs = {s: {"artifact": uri(s)} for s in ("prepare", "work", "finish")} if result_outputs is None \
        else result_outputs
    return Snapshot(
        job_ids=frozenset({JOB}), jobs={JOB: job} if job else {},
        results={JOB: {"outputs": outputs}} if results else {}, dead_letters={JOB: {}} if dead_letter else {},
        runs=[{"job_id": JOB, "stage": s, "attempt": a, "checkpoint_attempt_at_start": c, "at": BEFORE}
              for s, a, c in runs],
        objects={JOB: {name: created for name in objects}})


def test_a_sound_completed_job_breaks_nothing() -> None:
    assert violations(snapshot(), BUCKET, max_attempts=3) == []


def test_a_stage_rerun_by_a_crashed_attempt_before_its_checkpoint_is_allowed() -> None:
    job = completed_job()
    job["checkpoints"]["work"]["attempt"] = 2
    runs = [("prepare", 1, None), ("work", 1, None), ("work", 2, None), ("finish", 2, None)]
    job["checkpoints"]["finish"]["attempt"] = 2
    assert violations(snapshot(job, runs=runs), BUCKET, max_attempts=3) == []


@pytest.mark.parametrize(("case", "expected"), [
    (dict(job={}), "accepted but lost"),
    (dict(job=completed_job(state="running")), "not terminal"),
    (dict(results=False), "completed with result=False"),
    (dict(job=completed_job(state="failed"), results=False), "failed with result=False, dead letter=False"),
    (dict(job=completed_job(state="cancelled")), "cancelled with result=True"),
    (dict(job=completed_job(lease_renewed_at=ENDED)), "lease still held"),
    (dict(objects={uri("prepare"), uri("work"), uri("finish"), uri("extra")}), "artifacts without a checkpoint"),
    (dict(objects={uri("prepare"), uri("work")}), "checkpoints whose artifacts are missing"),
    (dict(runs=[("prepare", 1, None), ("work", 1, None), ("work", 1, None), ("finish", 1, None)]),
     "finished 2 times under attempt 1"),
    (dict(runs=[("prepare", 1, None), ("prepare", 2, 1), ("work", 1, None), ("finish", 1, None)]),
     "ran again under attempt 2 although its checkpoint"),
    (dict(runs=[("prepare", 1, None), ("work", 1, None)]), "names attempt 1, which never ran it"),
    (dict(runs=[("prepare", 1, None), ("work", 1, None), ("finish", 1, None), ("finish", 3, None)]),
     "ran after its checkpoint"),
    (dict(result_outputs={"finish": {"report": f"gs://{BUCKET}/jobs/{JOB}/finish/9-ff/gone.json"}}),
     "its result names missing objects"),
    (dict(created=ENDED + timedelta(seconds=1)), "objects created after the job ended"),
    (dict(job=completed_job(attempts=4)), "4 attempts used of a budget of 3"),
    (dict(job=completed_job(state="failed", attempts=2, errors=[{"code": "FLAKY", "retryable": True}]),
          results=False, dead_letter=True), "failed after 2 of 3 attempts on a retryable error"),
])
def test_each_broken_promise_is_reported(case: dict[str, Any], expected: str) -> None:
    found = violations(snapshot(**case), BUCKET, max_attempts=3)
    assert any(expected in problem for problem in found), found
