"""The emulator's small HTTP side (stdlib only): wipe a database, read or reset the per-RPC call counters, load
security rules.

    DELETE /emulator/v1/projects/{p}/databases/{d}/documents   wipe that database
    GET    /emulator/v1/stats[?database=projects/{p}/databases/{d}]   call counters (and injected faults) as JSON
    DELETE /emulator/v1/stats[?database=...]                    reset them
    PUT|GET|DELETE /emulator/v1/projects/{p}:securityRules      security rules (see rules/endpoint.py)
    GET    /emulator/v1/projects/{p}/databases/{d}/listen       open Listen streams, their targets, drops
    POST   /emulator/v1/projects/{p}/databases/{d}/listen:drop  close them with UNAVAILABLE (clients resume)
    GET    /                                                    "Ok" (health)

The port is bound and listening before the ready line; `http.server` (a noticeable part of the start time) is
imported on the serving thread afterwards, and requests that arrive meanwhile wait in the socket's backlog.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from ..faults import FaultPlan
from .stats import CallCounters
from .store import Store
from .transactions import Transactions

if TYPE_CHECKING:
    from .listen import Listens
    from .rules.registry import RulesRegistry

_WIPE = re.compile(r"^/emulator/v1/(projects/[^/]+/databases/[^/]+)/documents/?$")
_STATS = "/emulator/v1/stats"
_LISTEN = re.compile(r"^/emulator/v1/(projects/[^/]+/databases/[^/]+)/listen(:drop)?$")


class ControlServer:
    """Runs the HTTP endpoints on a daemon thread."""

    def __init__(self, host: str, port: int, store: Store, transactions: Transactions, counters: CallCounters,
                 faults: FaultPlan | None = None, rules: RulesRegistry | None = None,
                 listens: Listens | None = None):
        self.store = store
        self.transactions = transactions
        self._counters = counters
        self._faults = faults
        self._rules = rules
        self._listens = listens
        self._socket = socket.create_server((host, port))
        self.address = f"{host}:{self._socket.getsockname()[1]}"
        self._lock = threading.Lock()
        self._stopping = False
        self._server = None
        self._thread = threading.Thread(target=self._serve, name="firestore-http", daemon=True)

    def wipe(self, key: str) -> None:
        db = self.store.database(key)
        self.transactions.drop_database(db)
        db.wipe()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._lock:  # the serving thread may still be building its server: it then sees _stopping
            self._stopping = True
            server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
        else:
            self._socket.close()

    def _serve(self) -> None:
        from http.server import ThreadingHTTPServer

        handler = _handler(self, self._counters, self._faults, self._rules, self._listens)
        server = ThreadingHTTPServer(self._socket.getsockname(), handler, bind_and_activate=False)
        server.socket.close()
        server.socket = self._socket  # already bound and listening
        server.daemon_threads = True
        with self._lock:
            if self._stopping:
                server.server_close()
                return
            self._server = server
        server.serve_forever(poll_interval=0.05)


def _handler(control: ControlServer, counters: CallCounters, faults: FaultPlan | None,
             rules: RulesRegistry | None, listens: Listens | None) -> type:
    from http.server import BaseHTTPRequestHandler

    from .rules import endpoint as rules_endpoint  # with the rules parser: off the start path, like http.server

    class Handler(BaseHTTPRequestHandler):
        def _rules(self, method: str) -> bool:
            """Serve the rules endpoint if this is it."""
            if rules is None:
                return False
            try:
                length = max(0, int(self.headers.get("Content-Length") or 0))
            except ValueError:
                length = 0
            body = self.rfile.read(length) if length else b""
            answer = rules_endpoint.handle(method, urlsplit(self.path).path, body, rules)
            if answer is not None:
                self._reply(answer[0], "application/json", json.dumps(answer[1]).encode())
            return answer is not None

        def do_PUT(self) -> None:
            if not self._rules("PUT"):
                self._reply(404, "text/plain", f"no such endpoint: PUT {urlsplit(self.path).path}\n".encode())

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if self._rules("GET"):
                return
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
            if self._rules("DELETE"):
                return
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

    return Handler


def _database_param(query: str) -> str | None:
    values = parse_qs(query).get("database")
    return values[0] if values else None
