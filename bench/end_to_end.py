"""End-to-end benchmark of oncetask on the local stack (a script, not a timed test).

    .venv/bin/python bench/end_to_end.py [--jobs 300] [--latency 200] [--storm-keys 20 --storm-copies 25]
                                         [--rounds 3] [--recoveries 2] [--json figures.json]

Starts `LocalStack`s (the three emulators and the three functions under gunicorn, as `oncetask dev` runs them)
and prints, with rich:

1. Firestore calls per job on the happy path, from the Firestore emulator's per-database counters
   (`/emulator/v1/stats`), split into the API's part (submit) and the handler's part, against the floor of
   2 + stages for the handler (one read, one lease acquire, one commit per stage, the last one completing).
2. Throughput of no-op jobs with 1, 2 and 4 handler worker processes, beside a bare functions-framework handler
   (`bench/bare_handler.py`: one Firestore write, no lease, no checkpoint, no dedup, no token check) fed by
   unnamed tasks straight into the queue: the ratio is the price of the guarantees. Two figures each: "drain"
   (tasks queued while the queue is paused, timed from resume to the last 2xx) and "end to end" (8 client
   threads submitting while the queue runs, timed from the first submit to the last 2xx). The queue's production
   cap of 50 dispatches/s is lifted to 500/s here, so the handlers are measured, not the cap.
3. Enqueue latency p50/p99 (sequential POST /jobs, queue paused), and a duplicate storm: K keys x C copies
   submitted in random order from 16 threads; the share absorbed without creating a task.
4. Recovery after the handler is SIGKILLed mid-stage and replaced: the time until another worker holds the
   lease, against the lease TTL and the queue's retry schedule (Tasks emulator time scale 0.1, lease TTL 5 s).

Everything shares this machine (clients, emulators, functions): compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from google.cloud import tasks_v2
from rich.console import Console
from rich.table import Table

from oncetask import Retry
from oncetask.clients import firestore_client, tasks_client
from oncetask.jobstore import JobStore
from oncetask_dev.testjobs import app as test_jobs
from oncetask.states import JobState
from oncetask_dev.apiclient import ApiClient, ApiError
from oncetask_dev.children import answers_http, serve, stop_group
from oncetask_dev.stack import LocalStack, StackOptions
from oncetask_emulators.process import ChildProcess, free_port
from oncetask_emulators.tasks.backoff import RetryPolicy, schedule

import machine  # bench/machine.py, beside this script

# The apps these benchmarks serve are `bench.apps:...`, found from the repository's root, as the stack's functions
# find them (they run with the current directory on their path).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BARE_SOURCE = Path(__file__).resolve().parent / "bare_handler.py"
LIFTED_APP = "bench.apps:lifted"  # the default lane at 500/s and 100 in flight
CLIENT_THREADS = 8
console = Console(width=150)


# The stack and what it counts ---------------------------------------------------------------------------------

class Bench:
    """One running stack, with the counters and clients the measurements read."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.settings = stack.settings()
        self.tasks = tasks_client(self.settings)
        self.store = JobStore(firestore_client(self.settings))
        self.database = f"projects/{self.settings.project_id}/databases/{self.settings.database}"
        self.bare: ChildProcess | None = None
        self.queue = stack.lane_queue()  # the default lane's queue: where test.pipeline and noop jobs go
        self.bare_queue = self.settings.queue_path("bare")

    def api(self) -> ApiClient:
        return ApiClient(self.stack.api_url, timeout=30)

    def firestore_calls(self) -> Counter[str]:
        url = f"http://{self.stack.firestore_http}/emulator/v1/stats?database={self.database}"
        with urlopen(url, timeout=5) as response:
            return Counter(json.loads(response.read())["calls"])

    def successes(self) -> int:
        return int(self.stack.tasks_stats()["successes"])

    def tasks_created(self, queue: str) -> int:
        return int(self.stack.tasks_stats()["tasks_created_by_queue"].get(queue, 0))

    def wait_successes(self, target: int, timeout: float = 120.0) -> float:
        """Poll the Tasks emulator until `target` dispatches were answered 2xx; the time.monotonic() it happened."""
        deadline = time.monotonic() + timeout
        while self.successes() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.successes()} of {target} dispatches succeeded in {timeout}s")
            time.sleep(0.01)
        return time.monotonic()

    def pause(self, queue: str | None = None) -> None:
        self.tasks.pause_queue(name=queue or self.queue)

    def resume(self, queue: str | None = None) -> None:
        self.tasks.resume_queue(name=queue or self.queue)

    def submit_many(self, job_type: str, payload: dict[str, Any], count: int) -> list[str]:
        """Submit `count` jobs with distinct keys from CLIENT_THREADS threads; their job IDs."""
        run = uuid.uuid4().hex[:8]
        local = threading.local()

        def one(n: int) -> str:
            if not hasattr(local, "api"):
                local.api = self.api()
            return str(local.api.submit(job_type, payload, f"bench-{run}-{n}")["job_id"])

        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            return list(pool.map(one, range(count)))

    def all_completed(self, job_ids: list[str]) -> bool:
        return all((job := self.store.get(j)) is not None and job.state is JobState.COMPLETED for j in job_ids)

    # The bare baseline ------------------------------------------------------------------------------------

    def start_bare(self, workers: int) -> None:
        port = free_port("127.0.0.1")
        argv = [sys.executable, "-m", "functions_framework", "--source", str(BARE_SOURCE), "--target", "bare",
                "--host", "127.0.0.1", "--port", str(port)]
        env = {"FIRESTORE_EMULATOR_HOST": self.stack.firestore_host, "BARE_PROJECT": self.settings.project_id,
               "WORKERS": str(workers)}
        self.bare = serve(argv, name="bare", ready=lambda: answers_http(f"http://127.0.0.1:{port}/"),
                          endpoints={"http": f"127.0.0.1:{port}"}, env=env, timeout=60)
        queue = self.tasks.get_queue(name=self.queue)  # the same retry and (lifted) rate settings as the jobs queue
        queue.name = self.bare_queue
        self.tasks.create_queue(parent=self.bare_queue.rsplit("/queues/", 1)[0], queue=queue)

    def stop_bare(self) -> None:
        if self.bare is not None:
            stop_group(self.bare)

    def bare_task(self, n: int) -> tasks_v2.Task:
        assert self.bare is not None
        s = self.settings
        return tasks_v2.Task(http_request=tasks_v2.HttpRequest(
            url=f"http://{self.bare.endpoints['http']}/", http_method=tasks_v2.HttpMethod.POST,
            body=json.dumps({"n": n}).encode(), headers={"Content-Type": "application/json"},
            oidc_token=tasks_v2.OidcToken(service_account_email=s.tasks_service_account,
                                          audience=s.effective_task_audience)))

    def create_bare_tasks(self, count: int) -> None:
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(pool.map(lambda n: self.tasks.create_task(parent=self.bare_queue, task=self.bare_task(n)),
                          range(count)))


def start_stack(workers: int, time_scale: float = 1.0, env: dict[str, str] | None = None) -> Bench:
    options = StackOptions(app=LIFTED_APP, handler_workers=workers, time_scale=time_scale, cleanup_interval=3600.0,
                           env=env or {})
    stack = LocalStack(options)
    stack.start()
    return Bench(stack)


def stop(bench: Bench) -> None:
    bench.stop_bare()
    bench.stack.stop()


# 1. Firestore calls per job -----------------------------------------------------------------------------------

@dataclass
class Calls:
    job_type: str
    stages: int
    api: float
    handler: float
    handler_by_method: dict[str, float]


def calls_per_job(bench: Bench, job_type: str, payload: dict[str, Any], count: int) -> Calls:
    bench.pause()
    before = bench.firestore_calls()
    job_ids = bench.submit_many(job_type, payload, count)
    submitted = bench.firestore_calls()
    first = bench.successes()
    bench.resume()
    bench.wait_successes(first + count)
    # The handler answers 2xx after its last commit, so every call of every job is counted by now.
    done = bench.firestore_calls()
    handler = done - submitted
    assert bench.all_completed(job_ids), "a job of the calls run did not complete"
    return Calls(job_type, len(test_jobs.job_types()[job_type].stages), (submitted - before).total() / count,
                 handler.total() / count, {m: n / count for m, n in sorted(handler.items())})


# 2. Throughput ---------------------------------------------------------------------------------------------

@dataclass
class Throughput:
    workers: int
    drain: float
    drain_bare: float
    end_to_end: float
    end_to_end_bare: float


def drain_rate(bench: Bench, count: int, bare: bool) -> float:
    queue = bench.bare_queue if bare else bench.queue
    bench.pause(queue)
    job_ids: list[str] = []
    if bare:
        bench.create_bare_tasks(count)
    else:
        job_ids = bench.submit_many("noop", {}, count)
    first = bench.successes()
    started = time.monotonic()
    bench.resume(queue)
    ended = bench.wait_successes(first + count)
    assert bare or bench.all_completed(job_ids)
    return count / (ended - started)


def end_to_end_rate(bench: Bench, count: int, bare: bool) -> float:
    first = bench.successes()
    started = time.monotonic()
    job_ids: list[str] = []
    if bare:
        bench.create_bare_tasks(count)
    else:
        job_ids = bench.submit_many("noop", {}, count)
    ended = bench.wait_successes(first + count)
    assert bare or bench.all_completed(job_ids)
    return count / (ended - started)


def throughput(bench: Bench, workers: int, count: int, rounds: int) -> Throughput:
    """The median of `rounds` runs of each figure; the runs of oncetask and bare alternate, so a slow moment of
    the machine does not fall on one side only."""
    bench.start_bare(workers)
    try:
        # A short warm-up of each path, so process start and first connections are not timed.
        drain_rate(bench, 20, bare=False)
        drain_rate(bench, 20, bare=True)
        runs: dict[str, list[float]] = {"drain": [], "drain_bare": [], "end_to_end": [], "end_to_end_bare": []}
        for _ in range(rounds):
            runs["drain"].append(drain_rate(bench, count, bare=False))
            runs["drain_bare"].append(drain_rate(bench, count, bare=True))
            runs["end_to_end"].append(end_to_end_rate(bench, count, bare=False))
            runs["end_to_end_bare"].append(end_to_end_rate(bench, count, bare=True))
        return Throughput(workers, **{name: statistics.median(values) for name, values in runs.items()})
    finally:
        bench.stop_bare()


# 3. Enqueue latency and the duplicate storm ---------------------------------------------------------------------

@dataclass
class Enqueue:
    count: int
    p50_ms: float
    p99_ms: float
    storm_requests: int
    storm_keys: int
    storm_tasks_created: int
    storm_answers: dict[str, int]

    @property
    def absorbed(self) -> float:
        return 1 - self.storm_tasks_created / self.storm_requests


def enqueue(bench: Bench, count: int, keys: int, copies: int) -> Enqueue:
    bench.pause()
    api = bench.api()
    run = uuid.uuid4().hex[:8]
    latencies = []
    for n in range(count):
        started = time.perf_counter()
        api.submit("noop", {}, f"latency-{run}-{n}")
        latencies.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(latencies, n=100)

    requests = [f"storm-{run}-{k}" for k in range(keys) for _ in range(copies)]
    random.Random(7).shuffle(requests)
    created_before = bench.tasks_created(bench.queue)
    local = threading.local()

    def one(key: str) -> str:
        if not hasattr(local, "api"):
            local.api = bench.api()
        try:
            return str(local.api.submit("noop", {"note": "storm"}, key)["status"])
        except ApiError as error:
            return f"{error.status} {error.code}"

    with ThreadPoolExecutor(16) as pool:
        answers = Counter(pool.map(one, requests))
    created = bench.tasks_created(bench.queue) - created_before
    return Enqueue(count, cuts[49], cuts[98], len(requests), keys, created, dict(answers))


# 4. Recovery after a killed handler --------------------------------------------------------------------------

@dataclass
class Recovery:
    lease_ttl: float
    backoff_points: list[float]  # seconds after the failed attempt at which the task is tried again
    recovered_after: float  # kill -> another worker holds the lease
    completed_after: float  # kill -> the job completed
    attempts: int
    resumed_at_stage: str | None


def recovery(bench: Bench, ttl: float, time_scale: float, stage_ms: int) -> Recovery:
    s, retry = bench.settings, Retry()  # the default lane's backoff
    policy = RetryPolicy(s.max_attempts, retry.max_retry_duration, retry.min_backoff, retry.max_backoff,
                         retry.max_doublings)
    steps = [delay * time_scale for delay in schedule(policy, 4)]
    points = [round(sum(steps[:n + 1]), 2) for n in range(len(steps))]
    api = bench.api()
    job_id = api.submit("test.pipeline", {"sleep_ms": stage_ms}, f"recover-{uuid.uuid4().hex[:8]}")["job_id"]

    def job() -> Any:
        found = bench.store.get(job_id)
        assert found is not None
        return found

    poll(lambda: "prepare" in job().checkpoints, 60, "the first stage to finish")
    killed = time.monotonic()
    bench.stack.kill("task_handler")
    bench.stack.restart("task_handler")  # the platform starts a new instance; it takes over once the lease lapses
    poll(lambda: job().attempts >= 2 and job().state is JobState.RUNNING, 120, "another worker to take the lease")
    recovered = time.monotonic()
    resumed_at = job().current_stage
    poll(lambda: job().state is JobState.COMPLETED, 120, "the job to complete")
    return Recovery(ttl, points, recovered - killed, time.monotonic() - killed, job().attempts, resumed_at)


def poll(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# Report --------------------------------------------------------------------------------------------------------

def report(figures: dict[str, Any]) -> None:
    m = figures["machine"]
    console.print(f"[bold]oncetask end to end[/] on {m['nproc']} x {m['cpu']}, Python {m['python']}, {m['date']}, "
                  f"load average {m['load']} at the start and {m['load_end']} at the end")

    table = Table(title="Firestore calls per job, happy path")
    for column in ("job type", "stages", "API (submit)", "handler", "handler floor 2 + stages", "handler calls"):
        table.add_column(column)
    for c in figures["calls"]:
        table.add_row(c["job_type"], str(c["stages"]), f"{c['api']:.2f}", f"{c['handler']:.2f}",
                      str(2 + c["stages"]), ", ".join(f"{k} {v:.2f}" for k, v in c["handler_by_method"].items()))
    console.print(table)

    table = Table(title="No-op jobs per second (queue cap lifted to 500/s; median of the rounds)")
    for column in ("handler workers", "drain: oncetask", "drain: bare", "ratio", "end to end: oncetask",
                   "end to end: bare", "ratio"):
        table.add_column(column)
    for t in figures["throughput"]:
        table.add_row(str(t["workers"]), f"{t['drain']:.0f}", f"{t['drain_bare']:.0f}",
                      f"{t['drain'] / t['drain_bare']:.2f}", f"{t['end_to_end']:.0f}", f"{t['end_to_end_bare']:.0f}",
                      f"{t['end_to_end'] / t['end_to_end_bare']:.2f}")
    console.print(table)

    e = figures["enqueue"]
    table = Table(title="Enqueue (POST /jobs, queue paused)")
    for column in ("requests", "p50 ms", "p99 ms", "storm: requests (keys x copies)", "tasks created",
                   "absorbed without a task", "answers"):
        table.add_column(column)
    table.add_row(str(e["count"]), f"{e['p50_ms']:.1f}", f"{e['p99_ms']:.1f}",
                  f"{e['storm_requests']} ({e['storm_keys']} x {e['storm_requests'] // e['storm_keys']})",
                  str(e["storm_tasks_created"]), f"{1 - e['storm_tasks_created'] / e['storm_requests']:.1%}",
                  ", ".join(f"{k} {v}" for k, v in sorted(e["storm_answers"].items())))
    console.print(table)

    table = Table(title="Recovery after the handler is SIGKILLed mid-stage (Tasks time scale 0.1)")
    for column in ("lease TTL s", "retry points after the failure, s", "lease taken again after s",
                   "completed after s", "attempts", "resumed at stage"):
        table.add_column(column)
    for r in figures["recovery"]:
        table.add_row(f"{r['lease_ttl']:.0f}", ", ".join(f"{p:g}" for p in r["backoff_points"]),
                      f"{r['recovered_after']:.1f}", f"{r['completed_after']:.1f}", str(r["attempts"]),
                      str(r["resumed_at_stage"]))
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=400, help="jobs per throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="throughput runs per figure (the median is shown)")
    parser.add_argument("--calls-jobs", type=int, default=50, help="jobs per Firestore-calls run")
    parser.add_argument("--latency", type=int, default=400, help="sequential submissions timed")
    parser.add_argument("--storm-keys", type=int, default=20)
    parser.add_argument("--storm-copies", type=int, default=25)
    parser.add_argument("--recoveries", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    started = time.monotonic()
    figures: dict[str, Any] = {"machine": machine.describe(), "calls": [], "throughput": [], "recovery": []}

    for workers in (1, 2, 4):
        console.print(f"[dim]stack with {workers} handler worker(s)...[/]")
        bench = start_stack(workers)
        try:
            if workers == 2:
                for job_type in ("noop", "test.pipeline"):
                    figures["calls"].append(vars(calls_per_job(bench, job_type, {}, args.calls_jobs)))
            figures["throughput"].append(vars(throughput(bench, workers, args.jobs, args.rounds)))
            if workers == 2:
                result = enqueue(bench, args.latency, args.storm_keys, args.storm_copies)
                figures["enqueue"] = vars(result)
        finally:
            stop(bench)

    ttl, scale = 5.0, 0.1
    console.print("[dim]recovery stack...[/]")
    bench = start_stack(1, time_scale=scale, env={"ONCETASK_LEASE_TTL_SECONDS": str(ttl)})
    try:
        for _ in range(args.recoveries):
            figures["recovery"].append(vars(recovery(bench, ttl, scale, stage_ms=2000)))
    finally:
        stop(bench)

    figures["seconds"] = round(time.monotonic() - started, 1)
    figures["machine"]["load_end"] = machine.describe()["load"]
    report(figures)
    console.print(f"[dim]whole run: {figures['seconds']} s[/]")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
