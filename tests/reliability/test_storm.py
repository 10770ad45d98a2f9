"""A submission storm: many concurrent requests over few idempotency keys make one job, one task, one result each."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

from oncetask_dev.stack import LocalStack

from .conftest import Api, unique
from .invariants import Observer

SUBMISSIONS = 1000
KEYS = 50


def test_storm_of_1000_concurrent_submissions_over_50_keys_makes_50_jobs_50_tasks_50_results(
        stack: LocalStack, api: Api, observer: Observer) -> None:
    keys = [unique(f"storm{i}") for i in range(KEYS)]
    requests = [keys[i % KEYS] for i in range(SUBMISSIONS)]
    random.Random(7).shuffle(requests)  # duplicates of one key arrive interleaved, not one after another
    queue = stack.lane_queue()  # test.pipeline runs in the default lane
    created_before = observer.tasks_stats()["tasks_created_by_queue"].get(queue, 0)

    with ThreadPoolExecutor(max_workers=48) as pool:
        answers = list(pool.map(lambda key: (key, *api.submit(key, sleep_ms=20)), requests))

    assert Counter(status for _, status, _ in answers) == {202: SUBMISSIONS}, [a for a in answers if a[1] != 202][:3]
    ids_by_key: dict[str, set[str]] = defaultdict(set)
    for key, _, body in answers:
        ids_by_key[key].add(body["job_id"])
    assert all(len(ids) == 1 for ids in ids_by_key.values()), "one key answered with two job ids"
    job_ids = {job_id for ids in ids_by_key.values() for job_id in ids}
    assert len(job_ids) == KEYS
    # The storm really raced: most requests met a job that another request had created. Each key's job was
    # created by one request, whose answer says so unless that answer was lost to a dropped connection and resent.
    created = sum(body["status"] == "queued" for _, _, body in answers)
    assert KEYS - api.resent <= created <= KEYS, (created, api.resent)

    snap = observer.assert_invariants(job_ids, timeout=60)
    assert snap.states() == {"completed": KEYS}
    assert len(snap.results) == KEYS
    # Each job was taken exactly once, under its first task: no second task or delivery ever acquired it.
    taken = {job_id: (job["generation"], job["attempts"], job["errors"]) for job_id, job in snap.jobs.items()}
    assert {(g, a) for g, a, _ in taken.values()} == {(1, 1)}, {k: v for k, v in taken.items() if v[:2] != (1, 1)}
    assert observer.tasks_stats()["tasks_created_by_queue"][queue] - created_before == KEYS

