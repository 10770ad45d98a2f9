"""What the operations features cost and how fast they are (a script, not a timed test).

    .venv/bin/python bench/operations.py [--cancels 20] [--jobs 40 --job-seconds 10] [--stats-sizes 0,1000,10000]
                                         [--slow-cancels 4] [--json figures.json]

Runs the project's three emulators and oncetask's own processor in this process (deliveries are handed to
`Processor.handle` by threads, as the task handler's server threads would; the queue stays paused), and prints:

1. **Prompt cancel latency**: a stage that checks `ctx.check()` every 10 ms runs; the cancel is asked through
   `Commands.cancel` (what POST /jobs/{id}/cancel calls); measured from the request's return to the stage's
   `Cancelled`, and to the job written `cancelled`. With the listener (default) at the default lease (120 s, a
   heartbeat every 40 s), then without it (`prompt_cancel=false`) at a 30 s lease, where only the heartbeat tells.
2. **Its cost on jobs never cancelled**: N jobs of S seconds, 10 at a time, none cancelled; the reads the
   process's cancel listener was billed (its own counters: the initial result set, then one per document entering,
   changing in or leaving it), per job-minute; beside the two designs it was chosen over, measured on the same
   jobs: a listener on each running job's document (a watcher attached for each run counts its snapshots: the
   first, then one per write of the job: checkpoints, heartbeats, the end), and a read of the job once a second
   (one read per second of running, counted from the measured run times). Lease TTL 15 s here (a heartbeat
   every 5 s), so heartbeats happen and the per-document design pays for them.
3. **/stats**: with 0, 1,000 and 10,000 jobs (written straight into Firestore across states and 3 job types),
   the time to compute the figures (uncached), a cached answer, and what one call costs (queries, billed reads:
   one per 1,000 index entries a count matched, at least one per count; plus the sample's documents) beside the
   RPCs the Firestore emulator served; and the timeline (60 minutes in 12 buckets).

Everything shares this machine (emulators and clients): the latencies move with its load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.request import urlopen

from google.api_core import exceptions as gexc
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

import oncetask
from oncetask.errors import Cancelled
from oncetask.processor import TaskDelivery
from oncetask.states import JobState
from oncetask_dev.provision import create_queues, job_queues
from oncetask_dev.testing import Emulators, new_project_id

import machine  # bench/machine.py, beside this script

console = Console(width=140)


class Work(BaseModel):
    seconds: float
    tag: str = ""


STARTED: dict[str, threading.Event] = {}
SEEN: dict[str, float] = {}  # tag -> when the stage's check() raised Cancelled (monotonic)
RUN_TIMES: dict[str, float] = {}  # tag -> seconds the stage ran

app = oncetask.App("operations-bench")
long_job = app.job("bench.long", payload=Work)


@long_job.stage
def grind(ctx: oncetask.Context[Work]) -> dict:
    tag = ctx.payload.tag
    STARTED.setdefault(tag, threading.Event()).set()
    started = time.monotonic()
    deadline = started + ctx.payload.seconds
    try:
        while time.monotonic() < deadline:
            ctx.check()
            time.sleep(0.01)
    except Cancelled:
        SEEN[tag] = time.monotonic()
        raise
    finally:
        RUN_TIMES[tag] = time.monotonic() - started
    return {"ground": ctx.payload.seconds}


for name in ("bench.alpha", "bench.beta"):
    app.job(name, payload=Work).stage(lambda ctx: {}, name="only")


# Wiring -----------------------------------------------------------------------------------------------------------

def services_for(emulators: Emulators, **settings: Any) -> Any:
    config = emulators.settings(project_id=new_project_id(), queue_prefix=f"b{uuid.uuid4().hex[:8]}",
                                callback_queue=f"cb{uuid.uuid4().hex[:8]}", **settings)
    bench_app = oncetask.App("bench", lanes=tuple(app.lanes.values())).include(app).configure(config)
    services = bench_app.services
    create_queues(services.queue.client, config, bench_app.manifest())
    for queue in job_queues(config, bench_app.manifest()):
        services.queue.client.pause_queue(name=queue)  # deliveries are ours to make, not the emulator's
    try:
        services.bucket.client.create_bucket(config.bucket)
    except gexc.Conflict:
        pass  # made for an earlier measurement of this run
    return services


def deliver(services: Any, job_id: str) -> Any:
    job = services.store.get(job_id)
    return services.processor.handle(TaskDelivery(job_id, job.generation, job.task_name or ""))


def rpc_counts(emulators: Emulators, project: str) -> dict[str, int]:
    url = f"http://{emulators.firestore.http}/emulator/v1/stats?database=projects/{project}/databases/(default)"
    with urlopen(url, timeout=10) as response:
        return dict(json.loads(response.read())["calls"])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))]


# 1. Cancel latency -----------------------------------------------------------------------------------------------

def cancel_latency(emulators: Emulators, samples: int, **settings: Any) -> dict[str, Any]:
    services = services_for(emulators, **settings)
    to_stage, to_written, reads = [], [], []
    watch = services.processor.cancel_watch
    for n in range(samples):
        tag = f"c{uuid.uuid4().hex[:8]}"
        STARTED[tag] = threading.Event()
        job_id = services.commands.submit("bench", "bench.long", {"seconds": 120, "tag": tag}, None).job_id
        worker = threading.Thread(target=deliver, args=(services, job_id))
        worker.start()
        STARTED[tag].wait(30)
        time.sleep(0.2)  # well inside the stage
        before = watch.reads if watch else 0
        services.commands.cancel("bench", job_id)
        asked = time.monotonic()
        worker.join(180)
        written = time.monotonic()
        assert services.store.get(job_id).state is JobState.CANCELLED
        to_stage.append(SEEN[tag] - asked)
        to_written.append(written - asked)
        reads.append((watch.reads - before) if watch else 0)
    return {"samples": samples, "to_stage_ms": [round(v * 1000, 1) for v in to_stage],
            "to_cancelled_ms": [round(v * 1000, 1) for v in to_written],
            "listener_reads_per_cancel": statistics.mean(reads) if reads else 0,
            "heartbeat_seconds": services.settings.effective_heartbeat_seconds}


# 2. Cost on jobs never cancelled ---------------------------------------------------------------------------------

def uncancelled_cost(emulators: Emulators, jobs: int, seconds: float) -> dict[str, Any]:
    services = services_for(emulators, lease_ttl_seconds=15.0)
    watch = services.processor.cancel_watch
    tags = [f"u{uuid.uuid4().hex[:8]}" for _ in range(jobs)]
    ids = {tag: services.commands.submit("bench", "bench.long", {"seconds": seconds, "tag": tag}, None).job_id
           for tag in tags}
    snapshots: dict[str, int] = {}
    lock = threading.Lock()

    def run_one(tag: str) -> None:
        # What a listener on this job's document would be billed during its run: attached as the delivery starts.
        ref = services.store.ref(ids[tag])

        def count(docs: list[Any], changes: list[Any], read_time: Any) -> None:
            with lock:
                snapshots[tag] = snapshots.get(tag, 0) + 1

        listener = ref.on_snapshot(count)
        try:
            deliver(services, ids[tag])
        finally:
            time.sleep(0.2)  # the end's snapshot arrives
            listener.unsubscribe()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(run_one, tags))
    elapsed = time.monotonic() - started
    for job_id in ids.values():
        assert services.store.get(job_id).state is JobState.COMPLETED
    job_minutes = sum(RUN_TIMES[tag] for tag in tags) / 60
    return {
        "jobs": jobs, "job_seconds": seconds, "wall_seconds": round(elapsed, 1), "job_minutes": round(job_minutes, 2),
        "lease_ttl_seconds": 15.0,
        "process_listener": {"reads": watch.reads, "listens": watch.listens,
                             "reads_per_job_minute": round(watch.reads / job_minutes, 3)},
        "document_listener": {"reads": sum(snapshots.values()),
                              "reads_per_job_minute": round(sum(snapshots.values()) / job_minutes, 2)},
        "poll_every_second": {"reads": round(sum(RUN_TIMES[tag] for tag in tags)),
                              "reads_per_job_minute": 60.0},
    }


# 3. /stats ------------------------------------------------------------------------------------------------------

STATES = ["queued", "scheduled", "running", "waiting", "retrying", "completed", "failed", "cancelled"]


def fill(services: Any, count: int) -> None:
    """`count` jobs across states and job types, written straight into Firestore (as many as a busy day leaves)."""
    writer = services.firestore.bulk_writer()
    now = datetime.now(timezone.utc)
    types = ["bench.long", "bench.alpha", "bench.beta"]
    for n in range(count):
        state = STATES[n % len(STATES)]
        ended = now - timedelta(seconds=n % 3000)
        data = {"job_type": types[n % 3], "state": state, "owner": "bench", "payload": {"seconds": 1},
                "created_at": ended - timedelta(seconds=5), "started_at": ended - timedelta(seconds=4),
                "state_changed_at": ended, "updated_at": ended, "generation": 1, "attempts": 1, "fencing": 1}
        if state == "running":
            data.update({"lease_renewed_at": now - timedelta(seconds=(n % 400)), "lease_owner": "w"})
        writer.create(services.store.ref(uuid.uuid4().hex), data)
        if state == "failed":
            writer.create(services.firestore.collection("failed_tasks").document(uuid.uuid4().hex),
                          {"failed_at": ended, "job_type": types[n % 3]})
    writer.close()


def stats_cost(emulators: Emulators, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        services = services_for(emulators, stats_cache_seconds=5.0)
        fill(services, size)
        project = services.settings.project_id
        times = []
        for _ in range(5):
            services.stats.cache = type(services.stats.cache)(5.0)  # uncached
            started = time.perf_counter()
            figures = services.stats.overview()
            times.append(time.perf_counter() - started)
        before = rpc_counts(emulators, project)
        services.stats.cache = type(services.stats.cache)(5.0)
        services.stats.overview()
        after = rpc_counts(emulators, project)
        started = time.perf_counter()
        services.stats.overview()
        cached = time.perf_counter() - started
        timeline_started = time.perf_counter()
        timeline = services.stats.timeline(60, 12)
        timeline_time = time.perf_counter() - timeline_started
        rows.append({"jobs": size, "compute_ms_p50": round(statistics.median(times) * 1000, 1),
                     "compute_ms_max": round(max(times) * 1000, 1), "cached_ms": round(cached * 1000, 3),
                     "cost": figures["cost"], "rpcs": {k: after.get(k, 0) - before.get(k, 0) for k in after
                                                       if after.get(k, 0) != before.get(k, 0)},
                     "timeline_ms": round(timeline_time * 1000, 1), "timeline_cost": timeline["cost"],
                     "sample_size": figures["durations"]["size"]})
    return rows


# Output ---------------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--slow-cancels", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--job-seconds", type=float, default=10.0)
    parser.add_argument("--stats-sizes", default="0,1000,10000")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    console.print(f"[bold]oncetask operations benchmark[/] — {machine.summary()} (shared machine)")
    emulators = Emulators.start()
    figures: dict[str, Any] = {"machine": machine.describe()}
    try:
        figures["cancel"] = cancel_latency(emulators, args.cancels)
        figures["cancel_heartbeat_only"] = cancel_latency(emulators, args.slow_cancels, prompt_cancel=False,
                                                          lease_ttl_seconds=30.0)
        figures["uncancelled"] = uncancelled_cost(emulators, args.jobs, args.job_seconds)
        figures["stats"] = stats_cost(emulators, [int(s) for s in args.stats_sizes.split(",")])
    finally:
        emulators.stop()
    figures["machine_after"] = machine.describe()
    show(figures)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)


def show(figures: dict[str, Any]) -> None:
    table = Table(title="cancel latency, from the request to ...", title_justify="left")
    for column in ("design", "samples", "stage stops p50", "p95", "max", "job cancelled p50", "p95"):
        table.add_column(column, justify="left" if column == "design" else "right")
    for key, label in (("cancel", "listener (lease 120 s, heartbeat 40 s)"),
                       ("cancel_heartbeat_only", "heartbeat only (lease 30 s, heartbeat 10 s)")):
        row = figures[key]
        stage, written = row["to_stage_ms"], row["to_cancelled_ms"]
        table.add_row(label, str(row["samples"]), f"{pct(stage, 0.5):.0f} ms", f"{pct(stage, 0.95):.0f} ms",
                      f"{max(stage):.0f} ms", f"{pct(written, 0.5):.0f} ms", f"{pct(written, 0.95):.0f} ms")
    console.print(table)
    console.print(f"listener reads per cancel (this process): {figures['cancel']['listener_reads_per_cancel']:.1f}")
    cost = figures["uncancelled"]
    table = Table(title=f"cost on {cost['jobs']} jobs never cancelled ({cost['job_seconds']:g} s each, "
                        f"{cost['job_minutes']} job-minutes, lease {cost['lease_ttl_seconds']:g} s)",
                  title_justify="left")
    for column in ("design", "reads", "reads per job-minute"):
        table.add_column(column, justify="left" if column == "design" else "right")
    table.add_row(f"one query listener per process (chosen; {cost['process_listener']['listens']} listen)",
                  str(cost["process_listener"]["reads"]), str(cost["process_listener"]["reads_per_job_minute"]))
    table.add_row("a listener on each running job's document", str(cost["document_listener"]["reads"]),
                  str(cost["document_listener"]["reads_per_job_minute"]))
    table.add_row("a read of the job once a second", str(cost["poll_every_second"]["reads"]),
                  str(cost["poll_every_second"]["reads_per_job_minute"]))
    console.print(table)
    table = Table(title="/stats", title_justify="left")
    for column in ("jobs", "compute p50", "max", "cached", "queries", "billed reads", "emulator RPCs",
                   "timeline", "timeline reads"):
        table.add_column(column, justify="right")
    for row in figures["stats"]:
        table.add_row(f"{row['jobs']:,}", f"{row['compute_ms_p50']:.0f} ms", f"{row['compute_ms_max']:.0f} ms",
                      f"{row['cached_ms'] * 1000:.0f} µs", str(row["cost"]["firestore_queries"]),
                      str(row["cost"]["firestore_reads"]), json.dumps(row["rpcs"]),
                      f"{row['timeline_ms']:.0f} ms", str(row["timeline_cost"]["firestore_reads"]))
    console.print(table)
    console.print(f"[dim]load at the start {figures['machine']['load']}, at the end "
                  f"{figures['machine_after']['load']}[/]")


if __name__ == "__main__":
    main()
