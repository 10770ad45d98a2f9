"""`oncetask-tasks-emulator`: serve google.cloud.tasks.v2 over gRPC and dispatch HTTP tasks until signalled.

    oncetask-tasks-emulator --host 127.0.0.1 --port 8123 --http-port 8124 [--data-dir DIR] [--time-scale F]
                            [--tombstone-seconds N] [--fault SPEC --fault-seed N] [--target-fault SPEC] ...

Prints one line when ready: `oncetask-tasks-emulator ready grpc=H:P http=H:P`; `--port 0` and `--http-port 0`
pick free ports. SIGINT or SIGTERM stop it cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc

from ..faults import FaultInterceptor, FaultPlan, FaultSpecError
from .dispatcher import Dispatcher
from .http import ControlServer
from .oidc import TokenMinter
from .persistence import SqlitePersistence
from .service import generic_handlers
from .store import Store
from .targetfaults import TargetFaults

NAME = "oncetask-tasks-emulator"


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _workers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _raise_open_files_limit(wanted: int) -> None:
    """Each call in flight holds a socket; lift the soft limit on open files towards the hard one if need be."""
    try:
        import resource  # noqa: PLC0415 - POSIX only

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY
                                                        else min(wanted, hard), hard))
    except (ImportError, ValueError, OSError):
        pass  # not POSIX, or not allowed: calls past the limit fail as refused connections and are retried


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=NAME, description="Cloud Tasks emulator (google.cloud.tasks.v2)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="gRPC port; 0 picks a free one")
    parser.add_argument("--http-port", type=int, default=8124, help="JWKS and stats port; 0 picks a free one")
    parser.add_argument("--data-dir", help="keep queues, tasks, tombstones and the signing key in DIR")
    parser.add_argument("--time-scale", type=_positive, default=1.0,
                        help="multiply every backoff, schedule delay and max_retry_duration by F (not deadlines)")
    parser.add_argument("--deadline-scale", type=_positive, default=1.0,
                        help="multiply dispatch deadlines by F (to test deadline handling quickly)")
    parser.add_argument("--tombstone-seconds", type=float, default=3600.0,
                        help="how long a finished or deleted task's name is refused")
    parser.add_argument("--queue-tombstone-seconds", type=float, default=0.0,
                        help="how long a deleted queue's name is refused (production: about 7 days; 0: off)")
    parser.add_argument("--fault", default="", help="gRPC fault spec, e.g. UNAVAILABLE:0.05,DELAY:50ms:0.1")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--target-fault", default="", help="dispatch fault spec, e.g. FAIL:0.1,SLOW:2s:0.05")
    parser.add_argument("--target-fault-seed", type=int, default=0)
    parser.add_argument("--dispatch-workers", type=_workers, default=2000,
                        help="most calls to targets in flight at once, all queues together (a thread each)")
    parser.add_argument("--workers", type=int, default=32, help="gRPC worker threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM, then exit the process (status 0); returns only on a usage or startup error."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=f"{NAME}: %(levelname)s %(message)s")
    interceptors = []
    try:
        faults = FaultPlan.from_spec(args.fault, args.fault_seed)
        if faults:
            interceptors.append(FaultInterceptor(faults))
        target_faults = TargetFaults(args.target_fault, args.target_fault_seed)
    except FaultSpecError as error:
        print(f"{NAME}: {error}", file=sys.stderr)
        return 2

    _raise_open_files_limit(2 * args.dispatch_workers + 256)
    persistence = SqlitePersistence(args.data_dir) if args.data_dir else None
    store = Store(tombstone_seconds=args.tombstone_seconds, queue_tombstone_seconds=args.queue_tombstone_seconds,
                  time_scale=args.time_scale, persistence=persistence)
    minter = TokenMinter(args.data_dir)
    dispatcher = Dispatcher(store, minter, deadline_scale=args.deadline_scale, target_faults=target_faults,
                            max_workers=args.dispatch_workers)

    server = grpc.server(ThreadPoolExecutor(max_workers=args.workers), interceptors=interceptors,
                         options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers(generic_handlers(store, dispatcher))
    grpc_port = server.add_insecure_port(f"{args.host}:{args.port}")
    if grpc_port == 0:
        print(f"{NAME}: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    try:
        control = ControlServer(args.host, args.http_port, store, dispatcher, minter, faults)
    except OSError as error:
        print(f"{NAME}: cannot listen on {args.host}:{args.http_port}: {error}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    server.start()
    control.start()
    dispatcher.start()
    print(f"{NAME} ready grpc={args.host}:{grpc_port} http={control.address}", flush=True)
    while not stop.wait(3600):
        pass
    server.stop(grace=0.5).wait()
    dispatcher.stop()
    control.stop()
    if persistence:
        with store.lock:
            persistence.close()
    # Dispatch threads may be waiting on a slow target for up to the dispatch deadline; the interpreter would join
    # them at exit. Their attempts are unrecorded, so they are simply dispatched again after a restart.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
