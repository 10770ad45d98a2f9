"""One HTTP attempt against a target, with a keep-alive connection per dispatch thread."""

from __future__ import annotations

import http.client
import socket
import threading
import urllib.parse
from dataclasses import dataclass

_local = threading.local()


@dataclass(frozen=True)
class Outcome:
    """What an attempt came to: an HTTP status (the target answered) or none (refused, reset, deadline)."""

    status: int | None
    reason: str  # for X-CloudTasks-TaskRetryReason on the next attempt

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _connection(scheme: str, netloc: str, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
    """A cached connection to `netloc` (reused: True) or a new one."""
    pool: dict = _local.__dict__.setdefault("pool", {})
    key = (scheme, netloc)
    conn = pool.get(key)
    if conn is not None:
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = cls(netloc, timeout=timeout)
    pool[key] = conn
    return conn, False


def _drop(scheme: str, netloc: str) -> None:
    conn = _local.__dict__.get("pool", {}).pop((scheme, netloc), None)
    if conn is not None:
        conn.close()


def send(url: str, method: str, headers: dict[str, str], body: bytes, timeout: float) -> Outcome:
    """Send one request; a reply is read in full (so the connection can be reused) and its status returned."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    for _ in range(2):
        conn, reused = _connection(parts.scheme, parts.netloc, timeout)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.will_close:
                _drop(parts.scheme, parts.netloc)
            return Outcome(response.status, f"HTTP status {response.status}")
        except (TimeoutError, socket.timeout):
            _drop(parts.scheme, parts.netloc)
            return Outcome(None, "DEADLINE_EXCEEDED: no response within the dispatch deadline")
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
            _drop(parts.scheme, parts.netloc)
            # A kept-alive connection the target closed while idle: the request never got there, send it again
            # on a fresh one. On a fresh connection the same error is a real failure of the attempt.
            if not reused:
                return Outcome(None, f"UNAVAILABLE: {type(error).__name__}: {error}")
        except OSError as error:
            _drop(parts.scheme, parts.netloc)
            return Outcome(None, f"UNAVAILABLE: {type(error).__name__}: {error}")
        except http.client.HTTPException as error:
            _drop(parts.scheme, parts.netloc)
            return Outcome(None, f"UNAVAILABLE: bad HTTP response: {type(error).__name__}: {error}")
    return Outcome(None, "UNAVAILABLE: connection closed by the target")
