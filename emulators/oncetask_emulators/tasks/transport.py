"""One HTTP attempt against a target, on a kept-alive connection from a small shared pool.

The pool is shared by all dispatch threads and keeps at most MAX_IDLE idle connections per target: threads come
and go with the load (workers.py), and a thread-local cache would pin one open socket to each of them.
"""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.parse
from dataclasses import dataclass

MAX_IDLE = 256  # idle keep-alive connections kept per (scheme, host:port)
_idle: dict[tuple[str, str], list[http.client.HTTPConnection]] = {}
_idle_lock = threading.Lock()


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: an HTTP status (the target answered) or none (refused, reset, deadline)."""

    status: int | None
    reason: str  # for X-CloudTasks-TaskRetryReason on the next attempt
    retry_after: str | None = None  # the response's Retry-After header, as sent

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _connection(key: tuple[str, str], timeout: float, fresh: bool) -> tuple[http.client.HTTPConnection, bool]:
    """An idle connection to the target (reused: True) or a new one; the caller owns it until it gives it back."""
    conn = None
    if not fresh:
        with _idle_lock:
            idle = _idle.get(key)
            conn = idle.pop() if idle else None
    if conn is not None:
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True
    cls = http.client.HTTPSConnection if key[0] == "https" else http.client.HTTPConnection
    return cls(key[1], timeout=timeout), False


def _give_back(key: tuple[str, str], conn: http.client.HTTPConnection) -> None:
    with _idle_lock:
        idle = _idle.setdefault(key, [])
        if len(idle) < MAX_IDLE:
            idle.append(conn)
            return
    conn.close()


def send(url: str, method: str, headers: dict[str, str], body: bytes, timeout: float) -> Outcome:
    """Send one request; a reply is read in full (so the connection can be reused) and its status returned."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    key = (parts.scheme, parts.netloc)
    for attempt in range(2):
        conn, reused = _connection(key, timeout, fresh=attempt > 0)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                conn.close()
            else:
                _give_back(key, conn)
            return Outcome(response.status, f"HTTP status {response.status}", response.getheader("Retry-After"))
        except (TimeoutError, socket.timeout):
            conn.close()
            return Outcome(None, "DEADLINE_EXCEEDED: no response within the dispatch deadline")
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
            conn.close()
            # A kept-alive connection the target closed while idle: the request never got there, send it again
            # on a fresh one. On a fresh connection the same error is a real failure of the attempt.
            if not reused:
                return Outcome(None, f"UNAVAILABLE: {type(error).__name__}: {error}")
        except OSError as error:
            conn.close()
            return Outcome(None, f"UNAVAILABLE: {type(error).__name__}: {error}")
        except http.client.HTTPException as error:
            conn.close()
            return Outcome(None, f"UNAVAILABLE: bad HTTP response: {type(error).__name__}: {error}")
    return Outcome(None, "UNAVAILABLE: connection closed by the target")
