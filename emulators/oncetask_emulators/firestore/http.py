"""The emulator's small HTTP side (stdlib only): wipe a database, read or reset the per-RPC call counters.

    DELETE /emulator/v1/projects/{p}/databases/{d}/documents   wipe that database
    GET    /emulator/v1/stats[?database=projects/{p}/databases/{d}]   call counters (and injected faults) as JSON
    DELETE /emulator/v1/stats[?database=...]                    reset them
    GET    /emulator/v1/projects/{p}/databases/{d}/listen       open Listen streams, their targets, drops
    POST   /emulator/v1/projects/{p}/databases/{d}/listen:drop  close them with UNAVAILABLE (clients resume)
    GET    /                                                    "Ok" (health)
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from ..faults import FaultPlan
from .listen import Listens
from .stats import CallCounters
from .store import Store
from .transactions import Transactions

_WIPE = re.compile(r"^/emulator/v1/(projects/[^/]+/databases/[^/]+)/documents/?$")
_STATS = "/emulator/v1/stats"
_LISTEN = re.compile(r"^/emulator/v1/(projects/[^/]+/databases/[^/]+)/listen(:drop)?$")


class ControlServer:
    """Runs the HTTP endpoints on a daemon thread."""

    def __init__(self, host: str, port: int, store: Store, transactions: Transactions, counters: CallCounters,
                 faults: FaultPlan | None = None, listens: Listens | None = None):
        control = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/":
                    self._reply(200, "text/plain", b"Ok\n")
                elif url.path == _STATS:
                    # Injected faults never reach the service (so no call counter): they are counted apart.
                    snapshot = {**counters.snapshot(_database_param(url.query)),
                                "faults": faults.counts() if faults else {}}
                    body = json.dumps(snapshot, sort_keys=True)
                    self._reply(200, "application/json", body.encode())
                elif (listen := _LISTEN.match(unquote(url.path))) and not listen.group(2) and listens:
                    self._reply(200, "application/json", json.dumps(listens.stats(listen.group(1))).encode())
                else:
                    self._reply(404, "text/plain", f"no such endpoint: GET {url.path}\n".encode())

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                listen = _LISTEN.match(unquote(url.path))
                if listen and listen.group(2) and listens:
                    dropped = listens.drop(listen.group(1))
                    self._reply(200, "application/json", json.dumps({"dropped": dropped}).encode())
                else:
                    self._reply(404, "text/plain", f"no such endpoint: POST {url.path}\n".encode())

            def do_DELETE(self) -> None:
                url = urlsplit(self.path)
                wipe = _WIPE.match(unquote(url.path))
                if wipe:
                    control.wipe(wipe.group(1))
                    self._reply(200, "application/json", b"{}")
                elif url.path == _STATS:
                    counters.reset(_database_param(url.query))
                    self._reply(200, "application/json", b"{}")
                else:
                    self._reply(404, "text/plain", f"no such endpoint: DELETE {url.path}\n".encode())

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep stdout for the ready line
                pass

        self.store = store
        self.transactions = transactions
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.address = f"{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="firestore-http", daemon=True
        )

    def wipe(self, key: str) -> None:
        db = self.store.database(key)
        self.transactions.drop_database(db)
        db.wipe()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _database_param(query: str) -> str | None:
    values = parse_qs(query).get("database")
    return values[0] if values else None
