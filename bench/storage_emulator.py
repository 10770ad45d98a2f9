"""Benchmark of the Storage emulator through the official client (a script, not a test).

    .venv/bin/python bench/storage_emulator.py [--objects 1000] [--size 4096] [--threads 4] [--data-dir DIR]

Starts its own emulator (memory only unless --data-dir) and prints: start to ready (median of 5 launches),
uploads/s of small objects (`upload_from_string`, a multipart upload each, half of them with
`if_generation_match=0` as the product writes artifacts), downloads/s of the same objects, metadata reads/s,
a 1,000-object listing's latency, and the throughput of one large resumable upload and its download. Client and
emulator share the machine, as in the test suite, so the rates are mostly the client's (google-cloud-storage
spends several ms of CPU a call); the emulator's own CPU time per request, read from /proc, is printed beside
them and moves far less with the machine's load.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from oncetask.clients import storage_client
from oncetask.settings import Settings
from oncetask_emulators.process import launch, python_module

import machine  # bench/machine.py, beside this script


def ready_time(extra: list[str], runs: int = 5) -> float:
    """Median seconds from spawning the emulator to its ready line."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        child = launch(python_module("oncetask_emulators.storage", "--port", "0", *extra), name="storage")
        times.append(time.perf_counter() - started)
        child.stop()
    return statistics.median(times)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(count: int, threads: int, work, pid: int) -> tuple[float, float]:  # noqa: ANN001
    """(calls per second, the emulator's CPU ms per call)."""
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(count)))
    elapsed = time.perf_counter() - started
    return count / elapsed, (cpu_seconds(pid) - cpu) * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000, help="objects per measurement")
    parser.add_argument("--size", type=int, default=4096, help="bytes per small object")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--large-mib", type=int, default=64, help="size of the resumable upload, MiB")
    parser.add_argument("--data-dir", help="run the emulator with --data-dir (SQLite) to measure persistence")
    args = parser.parse_args()

    extra_ready = ["--data-dir", os.path.join(args.data_dir, "ready")] if args.data_dir else []
    ready = ready_time(extra_ready)
    extra = ["--data-dir", args.data_dir] if args.data_dir else []
    emulator = launch(python_module("oncetask_emulators.storage", "--port", "0", *extra), name="storage")
    client = storage_client(Settings(STORAGE_EMULATOR_HOST=f"http://{emulator.endpoints['http']}"))
    payload = os.urandom(args.size)
    try:
        bucket = client.create_bucket(f"bench-{uuid.uuid4().hex[:10]}")
        names = [f"jobs/bench/{i:06d}.bin" for i in range(args.objects)]

        def upload(i: int) -> None:
            condition = {"if_generation_match": 0} if i % 2 else {}
            bucket.blob(names[i]).upload_from_string(payload, content_type="application/octet-stream", **condition)

        uploads = rate(args.objects, args.threads, upload, emulator.pid)
        downloads = rate(args.objects, args.threads, lambda i: bucket.blob(names[i]).download_as_bytes(),
                         emulator.pid)
        reads = rate(args.objects, args.threads, lambda i: bucket.get_blob(names[i]), emulator.pid)

        listings = []
        for _ in range(5):
            started = time.perf_counter()
            listed = sum(1 for _ in client.list_blobs(bucket, prefix="jobs/bench/"))
            listings.append(time.perf_counter() - started)
        assert listed == args.objects

        large = os.urandom(args.large_mib * 1024 * 1024)
        blob = bucket.blob("large.bin", chunk_size=8 * 1024 * 1024)
        started = time.perf_counter()
        blob.upload_from_file(io.BytesIO(large))
        up_mib_s = args.large_mib / (time.perf_counter() - started)
        started = time.perf_counter()
        assert bucket.blob("large.bin").download_as_bytes() == large
        down_mib_s = args.large_mib / (time.perf_counter() - started)
    finally:
        emulator.stop()

    print(f"storage emulator benchmark, {machine.summary()}, "
          f"{'data dir (SQLite WAL)' if args.data_dir else 'memory only'}")
    print(f"  start to ready (median of 5)   {ready * 1000:8.0f} ms")
    print(f"  uploads (multipart)            {uploads[0]:8.0f} /s  emulator CPU {uploads[1]:5.2f} ms each  "
          f"({args.objects} x {args.size} B, {args.threads} threads, half with if_generation_match=0)")
    print(f"  downloads (alt=media)          {downloads[0]:8.0f} /s  emulator CPU {downloads[1]:5.2f} ms each")
    print(f"  metadata reads (get_blob)      {reads[0]:8.0f} /s  emulator CPU {reads[1]:5.2f} ms each")
    print(f"  list {args.objects} objects (median of 5) {statistics.median(listings) * 1000:6.0f} ms")
    print(f"  resumable upload, {args.large_mib} MiB in 8 MiB chunks {up_mib_s:6.0f} MiB/s;  download "
          f"{down_mib_s:6.0f} MiB/s")


if __name__ == "__main__":
    main()
