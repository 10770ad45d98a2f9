"""The HTTP side: the JWKS that verifies the emulator's OIDC tokens, and counters for tests and benchmarks."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..faults import FaultPlan
from .dispatcher import Dispatcher
from .oidc import TokenMinter
from .store import Store

CERTS_PATH = "/oauth2/v3/certs"
STATS_PATH = "/emulator/v1/stats"


class ControlServer:
    """GET /oauth2/v3/certs and GET /emulator/v1/stats, served by a stdlib server in a thread."""

    def __init__(self, host: str, port: int, store: Store, dispatcher: Dispatcher, minter: TokenMinter,
                 faults: FaultPlan | None = None):
        def stats() -> dict:
            with store.lock:
                counters = asdict(store.counters)
                tombstones = len(store.tombstones)
            return {**counters, "tombstones": tombstones, "queues": store.pending_counts(),
                    "target_faults": dispatcher.target_faults.fired,
                    "faults": faults.counts() if faults else {}}  # --fault: injected gRPC faults by name

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                path = self.path.split("?", 1)[0]
                if path == CERTS_PATH:
                    self._send(200, minter.jwks)
                elif path == STATS_PATH:
                    self._send(200, stats())
                else:
                    self._send(404, {"error": f"no such path {path}; try {CERTS_PATH} or {STATS_PATH}"})

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "public, max-age=60")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet: tests poll stats often
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.address = f"{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
