"""Composition benchmark on the local stack (a script, not a timed test).

    .venv/bin/python bench/composition.py [--fanout 100 1000]

1. Fan-out: a `test.fanout` parent starting N child jobs (no-op), then stitching their outputs; the time from
   submit to the parent's completion, and the Firestore calls of the whole run per child (from the Firestore
   emulator's per-database counters).
2. Firestore calls per job of the same three no-op stages in one delivery (`single`) and in one delivery each
   (`per_stage`), against each mode's floor: 3 + stages for single (submit, read, acquire, a commit per stage, the
   last one completing), 1 + 3 x stages for per_stage (submit; per stage: read, acquire, the commit that checkpoints
   and hands over).
3. Graceful shutdown: SIGTERM to the handler worker holding a job's lease mid-stage, and the time until another
   worker holds it (against the lease TTL, which a SIGKILL would make it wait for).

Everything shares this machine (clients, emulators, functions).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.request import urlopen

import oncetask
from oncetask.clients import firestore_client
from oncetask_dev.stack import LocalStack, StackOptions

import machine  # bench/machine.py, beside this script

# The apps these benchmarks serve are `bench.apps:...`, found from the repository's root, as the stack's functions
# find them (they run with the current directory on their path).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def start(**options: object) -> LocalStack:
    stack = LocalStack(StackOptions(app="bench.apps:composition", cleanup_interval=3600.0,
                                    env={"ONCETASK_API_REQUIRE_AUTH": "false", **options.pop("env", {})}, **options))
    stack.start()
    return stack


def calls(stack: LocalStack) -> Counter[str]:
    s = stack.settings()
    url = f"http://{stack.firestore_http}/emulator/v1/stats?database=projects/{s.project_id}/databases/{s.database}"
    with urlopen(url, timeout=5) as response:
        return Counter(json.loads(response.read())["calls"])


def wait_state(stack: LocalStack, job_id: str, timeout: float = 600.0) -> dict:
    db = firestore_client(stack.settings())
    deadline = time.monotonic() + timeout
    while True:
        job = db.collection("jobs").document(job_id).get().to_dict() or {}
        if job.get("state") in ("completed", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is {job.get('state')}")
        time.sleep(0.25)


def fan_out(stack: LocalStack, parts: int) -> dict[str, float]:
    client = oncetask.Client(stack.api_url)
    before = calls(stack)
    started = time.monotonic()
    job_id = client.submit("test.fanout", {"parts": parts}, key=f"fanout-{parts}-{uuid.uuid4().hex[:6]}").job_id
    job = wait_state(stack, job_id)
    elapsed = time.monotonic() - started
    used = calls(stack) - before
    assert job["state"] == "completed", job.get("errors")
    return {"parts": parts, "seconds": elapsed, "children_per_s": parts / elapsed,
            "firestore_calls_per_child": sum(used.values()) / parts}


def calls_per_job(stack: LocalStack, delivery: str, jobs: int = 20) -> float:
    """Calls per job of one mode, counted with the queue drained (the handler answers after its last commit)."""
    client = oncetask.Client(stack.api_url)
    before = calls(stack)
    ids = [client.submit(f"bench.three.{delivery}", {}, key=f"{delivery}-{n}-{uuid.uuid4().hex[:6]}").job_id
           for n in range(jobs)]
    time.sleep(1.0)
    deadline = time.monotonic() + 120
    while any(int(q.get("pending", 0)) for q in stack.tasks_stats()["queues"].values()):
        if time.monotonic() > deadline:
            raise TimeoutError("tasks still pending")
        time.sleep(0.2)
    used = sum((calls(stack) - before).values())
    done = [wait_state(stack, job_id) for job_id in ids]  # read after counting: these reads are not the product's
    assert all(d["state"] == "completed" for d in done)
    return used / jobs


def shutdown_retake(stack: LocalStack) -> dict[str, float]:
    """SIGTERM the worker holding a job mid-stage; seconds until another worker took the lease."""
    client = oncetask.Client(stack.api_url)
    db = firestore_client(stack.settings())
    job_id = client.submit("test.pipeline", {"sleep_ms": 4000}, key=f"term-{uuid.uuid4().hex[:6]}").job_id
    ref = db.collection("jobs").document(job_id)
    deadline = time.monotonic() + 30
    while True:
        job = ref.get().to_dict() or {}
        if job.get("state") == "running" and job.get("current_stage") == "prepare":
            break
        if time.monotonic() > deadline:
            raise TimeoutError("the job did not start")
        time.sleep(0.05)
    pid, fencing = int(job["lease_owner"].rsplit("-", 2)[1]), job["fencing"]
    sent = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while (ref.get().to_dict() or {}).get("fencing", 0) <= fencing:
        if time.monotonic() - sent > 300:
            raise TimeoutError("nobody took the job over")
        time.sleep(0.02)
    retaken = time.monotonic() - sent
    final = wait_state(stack, job_id)
    return {"retaken_after_s": retaken, "lease_ttl_s": stack.settings().lease_ttl_seconds,
            "completed": final["state"] == "completed"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fanout", type=int, nargs="*", default=[100, 1000])
    args = parser.parse_args()
    print(machine.describe())
    stack = start(handler_workers=2)
    try:
        for parts in args.fanout:
            print("fan-out:", {k: round(v, 2) for k, v in fan_out(stack, parts).items()})
        for delivery in ("single", "per_stage"):
            print(f"calls per job, {delivery}: {calls_per_job(stack, delivery):.2f}")
    finally:
        stack.stop()
    stack = start(handler_workers=2)  # production's time scale and lease TTL (120 s)
    try:
        print("graceful shutdown:", shutdown_retake(stack))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
