"""Parents and their child jobs under fire: handler workers killed in the middle of parents' and children's stages
while the fan-in happens, with cleanup running every second. Every child is started once, every parent stitches
once, after every child ended, and nothing else the fault suite checks breaks."""

from __future__ import annotations

from collections import Counter

from oncetask_dev.stack import LocalStack

from .conftest import Api, unique
from .invariants import Observer, fan_in_violations, wait_for
from .workers import kill_holders

PARENTS = 4
PARTS = 8
KILLS = 4


def test_workers_killed_during_fan_out_and_fan_in_start_no_child_twice_and_wake_each_parent_once(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    parents = []
    for _ in range(PARENTS):
        status, body = api.post("jobs", {"job_type": "test.fanout", "idempotency_key": unique("fanout"),
                                         "payload": {"parts": PARTS, "sleep_ms": 200, "record_runs": True}})
        assert status == 202, body
        parents.append(body["job_id"])

    kills = kill_holders(stack, lambda: {**observer.docs("jobs", parents), **observer.children_of(parents)},
                         observer.job, KILLS, per_job=1)
    assert len(kills) >= 2, f"only {len(kills)} workers could be killed mid-stage"

    wait_for(lambda: len(observer.children_of(parents)) == PARENTS * PARTS, 60, "every child to be started")
    children = list(observer.children_of(parents))
    snap = observer.assert_invariants([*parents, *children], timeout=120)
    failed = {job_id: (job.get("job_type"), job.get("errors")) for job_id, job in snap.jobs.items()
              if job.get("state") != "completed"}
    assert snap.states() == {"completed": PARENTS * (PARTS + 1)}, failed
    assert fan_in_violations({p: snap.jobs[p] for p in parents}, {c: snap.jobs[c] for c in children}) == []
    stitches = Counter(r["job_id"] for r in snap.runs if r["stage"] == "stitch")
    assert all(stitches[p] >= 1 for p in parents)  # each parent stitched; twice only under a lost lease (checked)
