"""The HTTP edge: a threaded stdlib server that reads each request whole, hands it to the API, and writes the
answer; plus `GET /emulator/v1/stats` (per-method counters, status counts, injected faults) for tests and
benchmarks.

Every request gets an answer: API errors as production phrases them, and anything unexpected as a 500 that is
logged with its traceback while the server keeps serving. Connections are kept alive (HTTP/1.1), as the
client's session reuses them.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from . import errors
from .api import Request, Response, StorageApi, json_response
from .faults import HttpFaults
from .store import Store

LOG = logging.getLogger("oncetask_emulators.storage")
STATS_PATH = "/emulator/v1/stats"
MAX_BODY = 5 * 1024 ** 3  # refuse a Content-Length no single request to Cloud Storage can have


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()

    def count(self, method: str, status: int) -> None:
        with self._lock:
            self.calls[method] += 1
            self.statuses[str(status)] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"calls": dict(self.calls), "statuses": dict(self.statuses)}

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.statuses.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # clients open many connections at once; the default backlog (5) refuses them


class StorageServer:
    def __init__(self, host: str, port: int, store: Store, faults: HttpFaults | None = None) -> None:
        self.store = store
        self.api = StorageApi(store)
        self.stats = Stats()
        self.faults = faults
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: with Nagle's algorithm the second waits for the client's
            # delayed ACK of the first (about 40 ms a request on Linux).
            disable_nagle_algorithm = True
            timeout = 600  # an idle kept-alive connection gives its thread back after 10 minutes

            def _serve(self) -> None:
                try:
                    body = self._read_body()
                except errors.StorageError as error:
                    self.close_connection = True  # the rest of the stream cannot be trusted
                    self._send(_error_response(error))
                    return
                self._send(server.answer(self.command, self.path, self.headers, body,
                                         self.headers.get("Host") or f"{host}:{server.port}"))

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def _read_body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    return self._read_chunked()
                raw = self.headers.get("Content-Length")
                if raw is None:
                    return b""
                try:
                    length = int(raw)
                except ValueError:
                    raise errors.invalid(f"Invalid Content-Length: {raw!r}.") from None
                if not 0 <= length <= MAX_BODY:
                    raise errors.invalid(f"Invalid Content-Length: {raw!r}.")
                return self.rfile.read(length)

            def _read_chunked(self) -> bytes:
                chunks = []
                while True:
                    line = self.rfile.readline(1024)
                    try:
                        size = int(line.split(b";", 1)[0].strip(), 16)
                    except ValueError:
                        raise errors.invalid("Malformed chunked request body.") from None
                    if size == 0:
                        while self.rfile.readline(1024).strip():  # trailers
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(8)  # the CRLF after each chunk

            def _send(self, response: Response) -> None:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if response.status not in (204, 304):
                    if response.content_type:
                        self.send_header("Content-Type", response.content_type)
                    self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if response.body and self.command != "HEAD" and response.status not in (204, 304):
                    self.wfile.write(response.body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet: one line per request
                pass

        self._httpd = _Server((host, port), Handler)
        self.port = self._httpd.server_address[1]
        self.address = f"{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="http", daemon=True)

    def answer(self, method: str, target: str, headers, body: bytes, host: str) -> Response:  # noqa: ANN001
        """One request to one response; never raises."""
        parts = urlsplit(target)
        if parts.path.startswith("/emulator/"):
            return self._control(method, parts.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        request = Request(method, parts.path, query, headers, body, f"http://{host}")
        operation = "unknown"
        try:
            if self.faults:
                delay, failure = self.faults.draw()
                if delay:
                    time.sleep(delay)
                if failure is not None:
                    raise failure
            operation, response = self.api.handle(request)
        except errors.StorageError as error:
            response = _error_response(error)
        except Exception:  # a bug, not bad input: say so, keep serving
            LOG.error("unexpected error on %s %s\n%s", method, target, traceback.format_exc())
            response = _error_response(errors.StorageError(500, "backendError", "Internal error in the emulator."))
        self.stats.count(operation, response.status)
        return response

    def _control(self, method: str, path: str) -> Response:
        if path != STATS_PATH:
            return _error_response(errors.no_such_path(method, path))
        if method == "DELETE":
            self.stats.reset()
            return Response(204)
        with self.store.lock:
            buckets = len(self.store.buckets)
            objects = sum(len(b.live) for b in self.store.buckets.values())
            sessions = sum(1 for s in self.store.sessions.values() if s.result is None and s.error is None)
        return json_response({**self.stats.snapshot(), "buckets": buckets, "live_objects": objects,
                              "open_uploads": sessions, "faults": self.faults.counts() if self.faults else {}})

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _error_response(error: errors.StorageError) -> Response:
    content_type, body = error.body()
    return Response(error.status, body, content_type or None, dict(error.headers))


__all__ = ["StorageServer", "Stats", "STATS_PATH"]
