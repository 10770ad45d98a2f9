"""Scheduling benchmark on the local stack: lanes keep interactive work fast while batch work is saturated, and a
lane spread over shards dispatches as many times faster as it has queues (a script, not a timed test).

    .venv/bin/python bench/scheduling.py [--interactive 40] [--batch 300] [--shard-jobs 100]

1. Lane isolation (`bench.apps:lanes`: interactive 50/s, batch 10/s with 10 in flight, the default lanes). The
   latency of interactive no-op jobs (Firestore's created_at to completed_at, both server times), submitted at a
   steady pace, first alone, then while a backlog of batch jobs (each working 300 ms) saturates the batch lane.
   The ratio of the p95s is the figure: 1.0 means the batch burst did not delay interactive work at all.
2. Shard scaling (`bench.apps:shards`: lane `one` is one queue at 5 dispatches/s, lane `four` is four such
   queues). The same number of no-op jobs is queued in each lane (queues paused), then each lane is released and
   timed from release to its last completion. The ratio of the rates is the figure: about 4 with four shards.

Everything shares this machine (clients, emulators, functions): compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import oncetask
from oncetask.clients import firestore_client, tasks_client
from oncetask_dev.stack import LocalStack, StackOptions

import machine  # bench/machine.py, beside this script

# The apps these benchmarks serve are `bench.apps:...`, found from the repository's root, as the stack's functions
# find them (they run with the current directory on their path).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def start(app: str) -> LocalStack:
    stack = LocalStack(StackOptions(app=app, handler_workers=2, cleanup_interval=3600.0,
                                    env={"ONCETASK_API_REQUIRE_AUTH": "false"}))
    stack.start()
    return stack


def latencies(stack: LocalStack, job_ids: list[str], timeout: float = 300.0) -> list[float]:
    """Seconds from created_at to completed_at (server times) of each job, once all completed."""
    db = firestore_client(stack.settings())
    refs = [db.collection("jobs").document(job_id) for job_id in job_ids]
    deadline = time.monotonic() + timeout
    while True:
        docs = [d.to_dict() or {} for d in db.get_all(refs)]
        if all(d.get("state") == "completed" for d in docs):
            return [(d["completed_at"] - d["created_at"]).total_seconds() for d in docs]
        if time.monotonic() > deadline:
            raise TimeoutError("jobs did not complete in time")
        time.sleep(0.2)


def submit_paced(client: oncetask.Client, count: int, per_second: float, lane: str, tag: str) -> list[str]:
    ids = []
    for n in range(count):
        ids.append(client.submit("noop", {"note": tag}, key=f"{tag}-{n}", lane=lane).job_id)
        time.sleep(1 / per_second)
    return ids


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def lane_isolation(interactive: int, batch: int) -> dict[str, float]:
    stack = start("bench.apps:lanes")
    try:
        client = oncetask.Client(stack.api_url)
        run = uuid.uuid4().hex[:6]
        alone = latencies(stack, submit_paced(client, interactive, 5, "interactive", f"alone-{run}"))
        with ThreadPoolExecutor(16) as pool:
            backlog = list(pool.map(lambda n: client.submit("test.pipeline", {"sleep_ms": 100}, key=f"b-{run}-{n}",
                                                            lane="batch").job_id, range(batch)))
        loaded = latencies(stack, submit_paced(client, interactive, 5, "interactive", f"loaded-{run}"))
        db = firestore_client(stack.settings())
        waiting = sum(1 for d in db.get_all([db.collection("jobs").document(j) for j in backlog])
                      if (d.to_dict() or {}).get("state") != "completed")
        return {"alone_p50": statistics.median(alone), "alone_p95": p95(alone),
                "loaded_p50": statistics.median(loaded), "loaded_p95": p95(loaded),
                "batch_still_waiting": waiting, "ratio_p95": p95(loaded) / p95(alone)}
    finally:
        stack.stop()


def shard_scaling(jobs: int) -> dict[str, float]:
    stack = start("bench.apps:shards")
    try:
        tasks = tasks_client(stack.settings())
        client = oncetask.Client(stack.api_url)
        run = uuid.uuid4().hex[:6]
        rates = {}
        for lane in ("one", "four"):
            queues = [q for q in stack.job_queues() if f"-{lane}" in q.rsplit("/", 1)[1]]
            for queue in queues:
                tasks.pause_queue(name=queue)
            with ThreadPoolExecutor(16) as pool:
                ids = list(pool.map(lambda n, lane=lane: client.submit("noop", {}, key=f"{lane}-{run}-{n}",
                                                                       lane=lane).job_id, range(jobs)))
            released = time.monotonic()
            for queue in queues:
                tasks.resume_queue(name=queue)
            latencies(stack, ids)
            rates[lane] = jobs / (time.monotonic() - released)
        return {"one_queue_per_s": rates["one"], "four_shards_per_s": rates["four"],
                "ratio": rates["four"] / rates["one"]}
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactive", type=int, default=40)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--skip-isolation", action="store_true")
    parser.add_argument("--shard-jobs", type=int, default=100)
    args = parser.parse_args()
    print(machine.describe())
    if not args.skip_isolation:
        isolation = lane_isolation(args.interactive, args.batch)
        print("lane isolation:", {k: round(v, 3) for k, v in isolation.items()})
    scaling = shard_scaling(args.shard_jobs)
    print("shard scaling:", {k: round(v, 2) for k, v in scaling.items()})


if __name__ == "__main__":
    main()
