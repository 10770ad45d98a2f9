"""Benchmark of the Cloud Tasks emulator through the official client (a script, not a test).

    .venv/bin/python bench/tasks_emulator.py [--tasks 2000] [--threads 4] [--queues 8] [--data-dir DIR]
                                             [--stats-tasks 10000] [--stats-calls 300]

Starts its own emulator (memory only, time scale 1) and a no-op keep-alive HTTP target in this process, then
prints: CreateTask/s (named and unnamed, from N client threads, queues paused so nothing is dispatched meanwhile),
dispatches/s to the target (queues resumed with everything pending; one queue dispatches at most 500/s, as in
production, so the load is spread over several queues), and the lag from a task's schedule time to its arrival
at the target (p50/p99) for tasks scheduled to fall due at a steady 200/s. Then the cost of Queue.stats: v2beta3
GetQueue with and without `read_mask: stats` on an empty queue and on one holding --stats-tasks tasks (the figures
are computed from the queue's tasks under the emulator's lock), and v2 GetQueue for comparison. Client, target and
emulator share the machine, as in the test suite.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.cloud import tasks_v2beta3
from google.cloud.tasks_v2beta3.services.cloud_tasks.transports import CloudTasksGrpcTransport as BetaGrpcTransport

from oncetask.clients import tasks_client
from oncetask.settings import Settings
from oncetask_emulators.process import launch, python_module

import machine  # bench/machine.py, beside this script

PARENT = "projects/bench/locations/us-central1"


class BackloggedServer(ThreadingHTTPServer):
    # A deep accept backlog: hundreds of dispatch threads connect at once, and the default of 5 turns that burst
    # into refused connections, i.e. failed attempts and backoff, not a throughput figure.
    request_queue_size = 1024
    daemon_threads = True


class Target:
    """A no-op handler that notes when each task arrived and the ETA it carried."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, float]] = []  # (arrival wall time, X-CloudTasks-TaskETA)
        self.lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                now = time.time()
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with target.lock:
                    target.arrivals.append((now, float(self.headers["X-CloudTasks-TaskETA"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = BackloggedServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/noop"

    def reset(self) -> None:
        with self.lock:
            self.arrivals.clear()

    def wait_for(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"target got {len(self.arrivals)} of {count} tasks in {timeout}s")
            time.sleep(0.005)


def make_queues(client, count: int) -> list[str]:
    queues = []
    for _ in range(count):
        name = f"{PARENT}/queues/bench-{uuid.uuid4().hex[:8]}"
        client.create_queue(parent=PARENT, queue={"name": name, "rate_limits": {"max_dispatches_per_second": 500}})
        queues.append(name)
    return queues


def create_rate(client, queues: list[str], url: str, total: int, threads: int, named: bool,
                schedule: list[float] | None = None) -> float:
    """CreateTask calls per second over `total` tasks spread round-robin over the queues."""
    run = uuid.uuid4().hex[:8]

    def create(i: int) -> None:
        queue = queues[i % len(queues)]
        task: dict = {"http_request": {"url": url}}
        if named:
            task["name"] = f"{queue}/tasks/{run}-{i}"
        if schedule is not None:
            seconds = schedule[i]
            task["schedule_time"] = {"seconds": int(seconds), "nanos": int((seconds % 1) * 1e9)}
        client.create_task(parent=queue, task=task)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(total)))
    return total / (time.perf_counter() - started)


def call_rate(call, calls: int) -> tuple[float, float]:
    """Sequential calls per second, and the median latency in ms."""
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    return calls / (sum(latencies) / 1000), statistics.median(latencies)


def stats_costs(client, beta, url: str, tasks: int, calls: int, threads: int) -> dict[str, tuple[float, float]]:
    """GetQueue (v2), v2beta3 GetQueue without and with stats, on an empty queue and on one with `tasks` tasks."""
    empty, full = make_queues(client, 2)
    client.pause_queue(name=full)
    create_rate(client, [full], url, tasks, threads, named=False)
    stats = {"paths": ["stats"]}
    costs = {}
    for label, queue in (("empty", empty), (f"{tasks} tasks", full)):
        costs[f"v2 GetQueue, {label}"] = call_rate(lambda: client.get_queue(name=queue), calls)
        costs[f"v2beta3 GetQueue, {label}"] = call_rate(lambda: beta.get_queue(name=queue), calls)
        costs[f"v2beta3 GetQueue + stats, {label}"] = call_rate(
            lambda: beta.get_queue(request={"name": queue, "read_mask": stats}), calls)
    assert beta.get_queue(request={"name": full, "read_mask": stats}).stats.tasks_count == tasks
    client.purge_queue(name=full)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000, help="tasks per measurement")
    parser.add_argument("--threads", type=int, default=4, help="client threads creating tasks")
    parser.add_argument("--queues", type=int, default=8)
    parser.add_argument("--data-dir", help="run the emulator with --data-dir (SQLite) to measure persistence")
    parser.add_argument("--dispatch-workers", type=int, help="the emulator's --dispatch-workers (its default if unset)")
    parser.add_argument("--stats-tasks", type=int, default=10000, help="tasks in the queue whose stats are read")
    parser.add_argument("--stats-calls", type=int, default=300, help="sequential GetQueue calls per measurement")
    args = parser.parse_args()

    extra = ["--data-dir", args.data_dir] if args.data_dir else []
    if args.dispatch_workers:
        extra += ["--dispatch-workers", str(args.dispatch_workers)]
    emulator = launch(python_module("oncetask_emulators.tasks", "--port", "0", "--http-port", "0", *extra),
                      name="tasks")
    target = Target()
    client = tasks_client(Settings(CLOUD_TASKS_EMULATOR_HOST=emulator.endpoints["grpc"]))
    beta = tasks_v2beta3.CloudTasksClient(
        transport=BetaGrpcTransport(channel=grpc.insecure_channel(emulator.endpoints["grpc"])))
    stats_url = f"http://{emulator.endpoints['http']}/emulator/v1/stats"
    try:
        queues = make_queues(client, args.queues)
        for queue in queues:
            client.pause_queue(name=queue)
        named = create_rate(client, queues, target.url, args.tasks, args.threads, named=True)
        unnamed = create_rate(client, queues, target.url, args.tasks, args.threads, named=False)

        started = time.perf_counter()
        for queue in queues:
            client.resume_queue(name=queue)
        target.wait_for(2 * args.tasks)
        dispatch_rate = 2 * args.tasks / (time.perf_counter() - started)
        stats = json.loads(urllib.request.urlopen(stats_url, timeout=5).read())
        successes, failed = stats["successes"], stats["failed_attempts"]

        # Lag: tasks that fall due at a steady 200/s, starting 2 s from now, created ahead of time.
        target.reset()
        lag_tasks = min(args.tasks, 1000)
        first_due = time.time() + 2 + lag_tasks / 1000
        schedule = [first_due + i / 200 for i in range(lag_tasks)]
        create_rate(client, queues, target.url, lag_tasks, args.threads, named=False, schedule=schedule)
        target.wait_for(lag_tasks)
        lags = sorted((arrived - eta) * 1000 for arrived, eta in target.arrivals)
        p50, p99 = statistics.median(lags), lags[int(0.99 * (len(lags) - 1))]

        costs = stats_costs(client, beta, target.url, args.stats_tasks, args.stats_calls, args.threads)
    finally:
        emulator.stop()
        target.server.shutdown()

    print(f"tasks emulator benchmark, {machine.summary()}, "
          f"{'data dir (SQLite WAL)' if args.data_dir else 'memory only'}")
    print(f"  CreateTask, named      {named:8.0f} /s  ({args.tasks} tasks, {args.threads} threads)")
    print(f"  CreateTask, unnamed    {unnamed:8.0f} /s")
    print(f"  dispatches to target   {dispatch_rate:8.0f} /s  ({2 * args.tasks} tasks over {args.queues} queues, "
          f"{successes} successes, {failed} failed attempts)")
    print(f"  schedule-to-dispatch lag  p50 {p50:6.1f} ms   p99 {p99:6.1f} ms  ({lag_tasks} tasks due at 200/s)")
    for label, (rate, median) in costs.items():
        print(f"  {label:40} {rate:8.0f} calls/s  p50 {median:5.2f} ms  ({args.stats_calls} sequential calls)")


if __name__ == "__main__":
    main()
