"""Firestore Listen: real-time snapshots over the `google.firestore.v1.Firestore/Listen` bidi stream.

`Listens` is the service's side: one change feed per database (fed by its commits), the open streams, and the
gRPC behaviour that serves one stream. See feed.py (the commit log and resume tokens), targets.py (what a target
holds and what the client must learn), stream.py (one stream's protocol) and access.py (security rules).
Those load with the first Listen call, not with the emulator (a faster start).
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import grpc

from ..errors import EmulatorError
from ..rules.gate import RulesGate
from ..stats import CallCounters
from ..store import Database, Store

if TYPE_CHECKING:
    from .feed import ChangeFeed
    from .stream import ListenResponsePb, ListenStream

DEFAULT_CAPACITY = 10_000  # commits a stream may have waiting before it is dropped (--listen-buffer)

__all__ = ["Listens", "DEFAULT_CAPACITY", "encode_response"]


def encode_response(response: ListenResponsePb | bytes) -> bytes:
    """The gRPC serializer of Listen responses: most are serialized already, once for all the streams that
    send the same ones (see ListenStream._apply)."""
    return response if isinstance(response, bytes) else response.SerializeToString()


class Listens:
    """Every Listen stream of the emulator, and the change feed of every database that has been listened to."""

    def __init__(self, store: Store, counters: CallCounters, capacity: int = DEFAULT_CAPACITY,
                 max_streams: int = 1000, rules: RulesGate | None = None):
        self._store = store
        self._counters = counters
        self._rules = rules
        self._capacity = capacity
        self._max_streams = max_streams
        self._lock = threading.Lock()
        self._feeds: dict[str, ChangeFeed] = {}
        self._streams: set[ListenStream] = set()
        self._dropped: Counter[str] = Counter()  # per database: streams the server closed (UNAVAILABLE)

    def feed(self, db: Database) -> ChangeFeed:
        """The database's change feed, attached to it on first use (a database nobody listens to logs nothing)."""
        with self._lock:
            feed = self._feeds.get(db.key)
            if feed is None:
                from .feed import ChangeFeed

                feed = self._feeds[db.key] = ChangeFeed(self._capacity)
                db.observers.append(feed)
            return feed

    def listen(self, request_iterator: Iterable, context: grpc.ServicerContext) -> Iterator[ListenResponsePb | bytes]:
        """The gRPC behaviour of Listen: serve one stream until the client leaves or the server drops it."""
        from .stream import ListenStream, StreamDropped

        # Listen does not pass through the service's guard: the stream keeps its caller for security rules.
        stream = ListenStream(self._store, self.feed, self._counters, self._rules, context.invocation_metadata())
        with self._lock:
            full = len(self._streams) >= self._max_streams
            if not full:
                self._streams.add(stream)
        if full:
            # Each open stream holds one of the server's worker threads: past this many, unary calls would
            # find none left. The client retries RESOURCE_EXHAUSTED (it reopens the stream).
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"Too many open Listen streams on this emulator (at most {self._max_streams}; "
                          "start it with more --workers).")
        if not context.add_callback(stream.close):
            stream.close()
        threading.Thread(target=stream.read_requests, args=(request_iterator,), name="listen-requests",
                         daemon=True).start()
        try:
            yield from stream.responses()
        except EmulatorError as error:
            if isinstance(error, StreamDropped) and stream.db is not None:
                with self._lock:
                    self._dropped[stream.db.key] += 1
            code, message = error.code, error.message
        except Exception as error:  # noqa: BLE001 - the server must keep serving whatever happens
            traceback.print_exc(file=sys.stderr)
            code, message = grpc.StatusCode.INTERNAL, f"internal error in Listen: {type(error).__name__}: {error}"
        else:
            return
        finally:
            with self._lock:
                self._streams.discard(stream)
        context.abort(code, message)

    def drop(self, database: str | None = None) -> int:
        """Close the streams of one database (or all) with UNAVAILABLE, as production does when a backend
        goes away; the client reconnects and resumes from its last resume token. Returns how many."""
        with self._lock:
            streams = [s for s in self._streams if database is None or (s.db is not None and s.db.key == database)]
        for stream in streams:
            stream.drop("The Listen stream was closed by the server; resume from the last token.")
        return len(streams)

    def stats(self, database: str) -> dict:
        with self._lock:
            streams = [s for s in self._streams if s.db is not None and s.db.key == database]
            return {
                "streams": len(streams),
                "targets": sum(len(s.targets) for s in streams),
                "dropped": self._dropped[database],
            }
