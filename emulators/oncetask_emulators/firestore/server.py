"""`oncetask-firestore-emulator`: serve google.firestore.v1 over gRPC (and a small HTTP side) until signalled.

    oncetask-firestore-emulator --host 127.0.0.1 --port 8080 [--http-port N] [--data-dir DIR]
                                [--fault SPEC --fault-seed N] [--lock-timeout S] [--transaction-idle S]
                                [--rules firestore.rules] [--listen-buffer N] [--workers N] ...

Prints one line when ready: `oncetask-firestore-emulator ready grpc=H:P http=H:P`; `--port 0` and
`--http-port 0` (the default) pick free ports. SIGINT or SIGTERM stop it cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc

from ..faults import FaultInterceptor, FaultPlan, FaultSpecError
from .http import ControlServer
from .listen import DEFAULT_CAPACITY
from .rules.gate import RulesGate
from .rules.registry import RulesRegistry
from .service import FirestoreService, generic_handler
from .stats import CallCounters
from .store import Store
from .transactions import Lifetimes, Transactions

NAME = "oncetask-firestore-emulator"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=NAME, description="Firestore emulator (google.firestore.v1 over gRPC)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="gRPC port; 0 picks a free one")
    parser.add_argument("--http-port", type=int, default=0, help="HTTP control port; 0 picks a free one")
    parser.add_argument("--data-dir", help="keep committed data in DIR (SQLite, survives kill -9)")
    parser.add_argument("--fault", default="", help="fault spec, e.g. UNAVAILABLE:0.05,DELAY:50ms:0.1")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--lock-timeout", type=float, default=5.0,
                        help="seconds a conflicting request waits for a document lock before ABORTED")
    parser.add_argument("--transaction-idle", type=float, default=60.0,
                        help="seconds after which an unused transaction expires")
    parser.add_argument("--transaction-max", type=float, default=270.0, help="longest life of a transaction")
    parser.add_argument("--version-retention", type=float, default=3600.0,
                        help="seconds of old document versions kept for reads at a past read_time")
    parser.add_argument("--listen-buffer", type=int, default=DEFAULT_CAPACITY,
                        help="commits a Listen stream may fall behind before it is dropped (it then resumes)")
    parser.add_argument("--workers", type=int, default=256,
                        help="gRPC worker threads (each open Listen stream holds one)")
    parser.add_argument("--rules", help="security rules file evaluated for end-user requests of every project "
                                        "(replace per project with PUT /emulator/v1/projects/{p}:securityRules)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interceptors = []
    try:
        faults = FaultPlan.from_spec(args.fault, args.fault_seed)
    except FaultSpecError as error:
        print(f"{NAME}: --fault: {error}", file=sys.stderr)
        return 2
    if faults:
        interceptors.append(FaultInterceptor(faults))

    rules = RulesRegistry()
    if args.rules:
        from .rules.ruleset import Ruleset  # the parser and evaluator only with rules: a faster start
        from .rules.syntax import RulesSyntaxError

        try:
            with open(args.rules, encoding="utf-8") as source:
                rules.default = Ruleset.parse(source.read(), args.rules)
        except (OSError, RulesSyntaxError) as error:
            print(f"{NAME}: --rules: {error}", file=sys.stderr)
            return 2

    persistence = None
    if args.data_dir:
        from .persistence import SqlitePersistence  # sqlite3 only when asked for: a faster start

        persistence = SqlitePersistence(args.data_dir)
    store = Store(retention_seconds=args.version_retention, persistence=persistence)
    transactions = Transactions(Lifetimes(idle_seconds=args.transaction_idle, max_seconds=args.transaction_max))
    counters = CallCounters()
    if args.listen_buffer < 1:
        print(f"{NAME}: --listen-buffer must be at least 1", file=sys.stderr)
        return 2
    # Each open Listen stream holds a worker thread; keep some for every other call.
    service = FirestoreService(store, transactions, counters, lock_timeout=args.lock_timeout,
                               rules=RulesGate(rules), listen_buffer=args.listen_buffer,
                               listen_streams=max(args.workers // 2, args.workers - 64))

    # Enough workers that requests waiting for a document lock never starve the ones that would free it.
    server = grpc.server(ThreadPoolExecutor(max_workers=args.workers), interceptors=interceptors,
                         options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((generic_handler(service),))
    grpc_port = server.add_insecure_port(f"{args.host}:{args.port}")
    if grpc_port == 0:
        print(f"{NAME}: cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1
    control = ControlServer(args.host, args.http_port, store, transactions, counters, faults, rules=rules,
                            listens=service.listens)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    server.start()
    control.start()
    reaper = threading.Thread(target=_expire_transactions, args=(transactions, stop), name="txn-reaper", daemon=True)
    reaper.start()
    print(f"{NAME} ready grpc={args.host}:{grpc_port} http={control.address}", flush=True)

    stop.wait()
    control.stop()
    service.listens.drop()  # Listen streams end now (UNAVAILABLE, as a backend going away), not after the grace
    stopped = server.stop(grace=1.0)
    for db in store.databases():  # requests waiting for a document lock answer now, not at their deadline
        db.locks.close()
    stopped.wait()
    store.close()
    print(f"{NAME} stopped", flush=True)
    return 0


def _expire_transactions(transactions: Transactions, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        transactions.expire()


if __name__ == "__main__":
    sys.exit(main())
