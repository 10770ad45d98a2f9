"""Benchmark of the Firestore emulator's Listen fan-out (a script, not a test).

    .venv/bin/python bench/firestore_listen.py [--listeners 50] [--commits 600] [--writers 4] [--watch-commits 60]

Starts its own emulator (memory only) and measures, with single-document commits from `--writers` threads of
the official client:

- **writes alone**: commits/s with nobody listening (the baseline);
- **emulator fan-out**: the same commits while `--listeners` Listen streams on the collection receive them, read
  by lean gRPC readers in a child process (protobuf parsing only), so what is measured is the emulator: changes
  delivered per second to all listeners together (listeners x commits / time from the first write until the last
  listener has them all), commits/s meanwhile, and the emulator's CPU per change;
- **latency**: one writer paced at `--paced-rate` commits/s (below the fan-out's capacity, so no queue builds
  up) for `--paced-commits` commits, and the commit-to-delivery latency over every listener;
- **through on_snapshot**: `--listeners` watches of the official Python client in a child process, each one
  callback per commit; the client's own work (snapshot objects, sorting each snapshot) bounds this one.

Everything shares the machine; the first line says which machine, when, and how loaded it was.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import threading
import time
import uuid

from google.cloud import firestore
from google.cloud.firestore_v1.types import firestore as firestore_types, query as query_types
from test_utils.system import EmulatorCreds

from oncetask_emulators.process import launch, python_module

import machine  # bench/machine.py, beside this script

COLLECTION = "fanout"
DOCUMENTS = 20  # commits cycle over this many documents: each listener's snapshot stays small


def client_for(host: str, project: str) -> firestore.Client:
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    return firestore.Client(project=project, credentials=EmulatorCreds())


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write(client: firestore.Client, writers: int, commits: int, tag: str, rate: float | None = None) -> float:
    """Commit `commits` single-document writes from `writers` threads (each paced to `rate`/writers commits/s
    if given); returns commits/s."""
    collection = client.collection(COLLECTION)
    per_writer = commits // writers
    interval = writers / rate if rate else 0.0

    def run(w: int) -> None:
        start = time.perf_counter()
        for i in range(per_writer):
            if interval:
                time.sleep(max(0.0, start + i * interval - time.perf_counter()))
            collection.document(f"d{(w * per_writer + i) % DOCUMENTS}").set({"w": w, "i": i, "tag": tag})

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_writer * writers / (time.perf_counter() - started)


# -- lean listeners (child process) --------------------------------------------------------------------------

def lean_listeners(host: str, project: str, count: int, expected: int, ready, results) -> None:
    """`count` raw Listen streams on the collection; each reports (latencies of its `expected` changes)."""
    import grpc

    ListenRequest = firestore_types.ListenRequest.pb()
    ListenResponse = firestore_types.ListenResponse.pb()
    database = f"projects/{project}/databases/(default)"
    target = firestore_types.Target.pb()(
        target_id=1,
        query=firestore_types.Target.QueryTarget.pb()(
            parent=f"{database}/documents",
            structured_query=query_types.StructuredQuery.pb()(
                from_=[query_types.StructuredQuery.CollectionSelector.pb()(collection_id=COLLECTION)]),
        ),
    )
    channel = grpc.insecure_channel(host)
    listen = channel.stream_stream("/google.firestore.v1.Firestore/Listen",
                                   request_serializer=ListenRequest.SerializeToString,
                                   response_deserializer=ListenResponse.FromString)
    done = threading.Event()

    def requests():
        yield ListenRequest(database=database, add_target=target)
        done.wait()

    def run() -> None:
        latencies, current = [], False
        call = listen(requests())
        for response in call:
            kind = response.WhichOneof("response_type")
            if kind == "target_change" and not response.target_change.target_ids and not current:
                current = True
                ready.put(1)
            elif kind == "document_change" and current:
                update = response.document_change.document.update_time
                latencies.append(time.time() - (update.seconds + update.nanos / 1e9))
                if len(latencies) == expected:
                    break
        call.cancel()
        results.put(latencies)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()


# -- on_snapshot watches (child process) ---------------------------------------------------------------------

def watches(host: str, project: str, count: int, expected: int, ready, results) -> None:
    client = client_for(host, project)
    collection = client.collection(COLLECTION)
    finished = threading.Semaphore(0)

    def make_callback():
        state = {"snapshots": 0}

        def on_snapshot(docs, changes, read_time):
            state["snapshots"] += 1
            if state["snapshots"] == 1:
                ready.put(1)
            elif state["snapshots"] == 1 + expected:
                finished.release()

        return on_snapshot

    started = [collection.on_snapshot(make_callback()) for _ in range(count)]
    for _ in range(count):
        finished.acquire()
    results.put(time.time())
    for watch in started:
        watch.unsubscribe()


def fan_out(host: str, pid: int, target, listeners: int, writers: int, commits: int,
            rate: float | None = None) -> dict:
    """Run `target` (lean_listeners or watches) in a child process, then the writes; returns the figures."""
    project = f"bench-{uuid.uuid4().hex[:8]}"
    client = client_for(host, project)
    for i in range(DOCUMENTS):  # the documents exist first: every commit is then one change for every listener
        client.collection(COLLECTION).document(f"d{i}").set({"w": -1, "i": -1})
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Queue(), spawn.Queue()
    child = spawn.Process(target=target, args=(host, project, listeners, commits, ready, results))
    child.start()
    for _ in range(listeners):
        ready.get(timeout=120)
    cpu_before = cpu_seconds(pid)
    started = time.time()
    commit_rate = write(client, writers, commits, "fan-out", rate)
    if target is lean_listeners:
        latencies = [x for _ in range(listeners) for x in results.get(timeout=600)]
        finished = time.time()
    else:
        latencies = []
        finished = results.get(timeout=600)
    child.join(timeout=60)
    elapsed = finished - started
    delivered = listeners * commits
    return {
        "commits_per_s": commit_rate,
        "delivered_per_s": delivered / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000 if latencies else None,
        "server_cpu_us_per_change": (cpu_seconds(pid) - cpu_before) / delivered * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--commits", type=int, default=600, help="commits for the emulator fan-out run")
    parser.add_argument("--watch-commits", type=int, default=60, help="commits for the on_snapshot run")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--paced-rate", type=float, default=10.0, help="commits/s of the latency run")
    parser.add_argument("--paced-commits", type=int, default=100)
    args = parser.parse_args()

    print(machine.summary())
    child = launch(python_module("oncetask_emulators.firestore", "--host", "127.0.0.1", "--port", "0",
                                 "--http-port", "0"), name="firestore")
    try:
        host = child.endpoints["grpc"]
        alone = write(client_for(host, f"bench-{uuid.uuid4().hex[:8]}"), args.writers, args.commits, "alone")
        lean = fan_out(host, child.pid, lean_listeners, args.listeners, args.writers, args.commits)
        paced = fan_out(host, child.pid, lean_listeners, args.listeners, 1, args.paced_commits, args.paced_rate)
        watched = fan_out(host, child.pid, watches, args.listeners, args.writers, args.watch_commits)
    finally:
        child.stop()

    n = args.listeners
    print(f"| measure ({args.writers} writer threads, single-document commits) | figure |")
    print("|---|---|")
    print(f"| commits/s, nobody listening | {alone:,.0f} |")
    print(f"| commits/s while {n} Listen streams receive them | {lean['commits_per_s']:,.0f} |")
    print(f"| changes delivered/s to {n} Listen streams (lean readers, {args.commits} commits) "
          f"| {lean['delivered_per_s']:,.0f} |")
    print(f"| commit-to-delivery latency p50 / p99, {args.paced_rate:g} commits/s to {n} streams "
          f"| {paced['p50_ms']:,.1f} / {paced['p99_ms']:,.1f} ms |")
    print(f"| emulator CPU per delivered change | {lean['server_cpu_us_per_change']:,.0f} µs |")
    print(f"| changes delivered/s to {n} `on_snapshot` watches ({args.watch_commits} commits) "
          f"| {watched['delivered_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
