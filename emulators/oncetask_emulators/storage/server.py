"""`oncetask-storage-emulator`: serve the Cloud Storage JSON API over HTTP until signalled.

    oncetask-storage-emulator --host 127.0.0.1 --port 9023 [--data-dir DIR] [--fault SPEC --fault-seed N]

Prints one line when ready: `oncetask-storage-emulator ready http=H:P`; `--port 0` picks a free port. Point the
client at it with STORAGE_EMULATOR_HOST=http://H:P. SIGINT or SIGTERM stop it cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .faults import HttpFaults
from .http import StorageServer
from .persistence import SqlitePersistence
from .store import Store

NAME = "oncetask-storage-emulator"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=NAME, description="Cloud Storage emulator (JSON API)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9023, help="HTTP port; 0 picks a free one")
    parser.add_argument("--data-dir", help="keep buckets, objects and upload sessions in DIR (survives kill -9)")
    parser.add_argument("--fault", default="", help="fault spec, e.g. UNAVAILABLE:0.05,503:0.01,DELAY:50ms:0.1")
    parser.add_argument("--fault-seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM, then exit the process (status 0); returns only on a usage or startup error."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=f"{NAME}: %(levelname)s %(message)s")
    faults = None
    if args.fault:
        try:
            faults = HttpFaults(args.fault, args.fault_seed)
        except ValueError as error:  # FaultSpecError
            print(f"{NAME}: {error}", file=sys.stderr)
            return 2
    store = Store(SqlitePersistence(args.data_dir) if args.data_dir else None)
    try:
        server = StorageServer(args.host, args.port, store, faults)
    except OSError as error:
        print(f"{NAME}: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"{NAME} ready http={server.address}", flush=True)
    while not stop.wait(3600):
        pass
    server.stop()
    store.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # request threads may be mid-transfer to a slow client; nothing of theirs is left to save


if __name__ == "__main__":
    sys.exit(main())
