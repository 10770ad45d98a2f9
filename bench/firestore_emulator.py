"""Benchmark of the Firestore emulator through the official client (a script, not a test).

    .venv/bin/python bench/firestore_emulator.py [--seconds 5] [--threads 8] [--ready-only] [--busy N]

Starts its own emulator (memory only), then prints one table: start-to-ready time, single-document commits/s
from N client threads, uncontended transactions/s, transactions/s on one hot document, and p50/p99 latency
of a query returning 100 documents. Client and server share the machine, as in the test suite.
`--busy N` measures the start-to-ready time again with N busy-looping Python processes beside it (a
`stress`-like load, bounded to the measurement); `--ready-only` skips the throughput runs; `--baseline DIR`
also measures the start of the emulator package found in DIR, alternating with this one, e.g. an older commit's
`git archive <commit> emulators | tar -x -C /tmp/old` with DIR = /tmp/old/emulators.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

from google.cloud import firestore
from test_utils.system import EmulatorCreds

from oncetask_emulators.process import launch, python_module

import machine  # bench/machine.py, beside this script


def start_emulator(package_dir: str | None = None):
    """Our emulator; with `package_dir`, the `oncetask_emulators` package in that directory instead
    (`python -m` puts its working directory first on the path)."""
    return launch(
        python_module("oncetask_emulators.firestore", "--host", "127.0.0.1", "--port", "0", "--http-port", "0"),
        name="firestore", cwd=package_dir,
    )


def ready_times(package_dirs: list[str | None], runs: int = 5) -> list[tuple[float, float]]:
    """For each package directory, medians of (seconds from spawning the process to its ready line, CPU seconds
    it used until then), the directories taking turns so that a change of load hits them alike. The CPU time
    hardly depends on what else runs on the machine, so it compares runs on a shared machine."""
    times: list[list[float]] = [[] for _ in package_dirs]
    cpu: list[list[float]] = [[] for _ in package_dirs]
    for _ in range(runs):
        for i, package_dir in enumerate(package_dirs):
            started = time.perf_counter()
            child = start_emulator(package_dir)
            times[i].append(time.perf_counter() - started)
            cpu[i].append(cpu_seconds(child.proc.pid))
            child.stop()
    return [(statistics.median(t), statistics.median(c)) for t, c in zip(times, cpu)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready_rows(label: str, baseline: str | None) -> list[tuple[str, str]]:
    dirs = [None, baseline] if baseline else [None]
    names = [label, f"{label}, --baseline"]
    return [(name, f"{wall * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU)")
            for name, (wall, cpu) in zip(names, ready_times(dirs))]


@contextlib.contextmanager
def busy_processes(count: int):
    """`count` Python processes spinning on the CPU for the duration of the block (at most 10 minutes)."""
    spin = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end: pass"
    children = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]
    try:
        time.sleep(0.5)  # let them take their share of the cores
        yield
    finally:
        for child in children:
            child.kill()
            child.wait()


def client_for(host: str) -> firestore.Client:
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    return firestore.Client(project=f"bench-{uuid.uuid4().hex[:8]}", credentials=EmulatorCreds())


def rate(threads: int, seconds: float, operation: Callable[[int, int], bool]) -> float:
    """Successful operations per second: `threads` threads call operation(thread, i) for `seconds`."""
    done = [0] * threads
    stop_at = time.perf_counter() + seconds

    def worker(t: int) -> None:
        i = 0
        while time.perf_counter() < stop_at:
            if operation(t, i):
                done[t] += 1
            i += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def commits(client: firestore.Client, threads: int, seconds: float) -> float:
    collection = client.collection("commits")

    def write(t: int, i: int) -> bool:
        collection.document(f"t{t}-{i}").set({"t": t, "i": i})
        return True

    return rate(threads, seconds, write)


def transactions(client: firestore.Client, threads: int, seconds: float, hot: bool) -> float:
    collection = client.collection("hot" if hot else "cold")
    for t in range(threads):
        collection.document("hot" if hot else f"t{t}").set({"n": 0})

    def increment(t: int, _: int) -> bool:
        ref = collection.document("hot" if hot else f"t{t}")

        @firestore.transactional
        def run(transaction) -> None:
            n = ref.get(transaction=transaction).get("n")
            transaction.update(ref, {"n": n + 1})

        try:
            run(client.transaction())
            return True
        except ValueError:  # gave up after the client's 5 attempts
            return False

    return rate(threads, seconds, increment)


def query_latency(client: firestore.Client, runs: int = 200) -> tuple[float, float]:
    collection = client.collection("query")
    batch = client.batch()
    for i in range(100):
        batch.set(collection.document(f"d{i:03}"), {"i": i, "tag": "x"})
    batch.commit()
    query = collection.where(filter=firestore.FieldFilter("tag", "==", "x")).order_by("i")
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        assert len(list(query.stream())) == 100
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--ready-only", action="store_true", help="measure only the start-to-ready time")
    parser.add_argument("--busy", type=int, default=0, help="also measure start-to-ready beside N busy processes")
    parser.add_argument("--baseline", help="directory holding another oncetask_emulators package to compare with")
    args = parser.parse_args()

    rows = ready_rows("start to ready (median of 5)", args.baseline)
    if args.busy:
        with busy_processes(args.busy):
            rows += ready_rows(f"start to ready beside {args.busy} busy processes", args.baseline)
    if args.ready_only:
        print_table(rows)
        return
    child = start_emulator()
    try:
        client = client_for(child.endpoints["grpc"])
        rows.append((f"single-document commits/s, {args.threads} threads", f"{commits(client, args.threads, args.seconds):.0f}"))
        rows.append((f"uncontended transactions/s, {args.threads} threads",
                     f"{transactions(client, args.threads, args.seconds, hot=False):.0f}"))
        rows.append((f"transactions/s on one hot document, {args.threads} threads",
                     f"{transactions(client, args.threads, args.seconds, hot=True):.0f}"))
        p50, p99 = query_latency(client)
        rows.append(("100-document query latency p50 / p99", f"{p50 * 1000:.1f} ms / {p99 * 1000:.1f} ms"))
    finally:
        child.stop()
    print_table(rows)


def print_table(rows: list[tuple[str, str]]) -> None:
    print(f"Firestore emulator benchmark, {machine.summary()}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>20}")


if __name__ == "__main__":
    main()
