"""The change feed of one database: its commits in commit order, for Listen streams to read at their own pace.

A commit appends one entry (its commit time and the documents it wrote) while it still holds the database's
commit lock, so entries are in commit-time order, and every commit at or before a read time the database has
handed out is already in the feed. Writers never wait for readers: the feed keeps a bounded window of entries,
and a stream that falls further behind than the window is dropped, to resume from its last token (see stream.py).

Resume tokens name a point of this feed's history: a version byte, the feed's epoch (new at every start of the
emulator and every wipe of the database, after which older history is gone) and the snapshot time.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from google.cloud.firestore_v1.types import document

DocumentPb = document.Document.pb()

DEFAULT_CAPACITY = 10_000  # commits a stream may be behind before it is dropped
_TOKEN_VERSION = b"\x01"
_TOKEN_LENGTH = 1 + 8 + 8


@dataclass(frozen=True)
class Entry:
    seq: int  # position in the feed, from 0, never reused
    micros: int  # commit time
    changes: Mapping[str, DocumentPb | None]  # document name -> its version after the commit (None: deleted)


class FellBehind(Exception):
    """The stream's next entry has left the feed's window."""


class ChangeFeed:
    """Observes one `store.Database` (see `CommitObserver` there) and serves its commits to Listen streams."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity < 1:
            raise ValueError("a change feed keeps at least one commit")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: list[Entry] = []
        self._next_seq = 0
        self._wakers: set[Callable[[], None]] = set()
        self.epoch = secrets.token_bytes(8)

    # -- the database's side (called under its commit lock: keep it short) ------------------------------------

    def committed(self, micros: int, changes: Mapping[str, DocumentPb | None]) -> None:
        with self._lock:
            self._entries.append(Entry(self._next_seq, micros, changes))
            self._next_seq += 1
            if len(self._entries) > 2 * self.capacity:  # trimmed in chunks: amortized O(1) per commit
                del self._entries[: len(self._entries) - self.capacity]
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    def wiped(self) -> None:
        """The database was emptied outside any commit: its history is gone, and so is every stream's place in it."""
        with self._lock:
            self.epoch = secrets.token_bytes(8)
            self._entries.clear()
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    # -- the streams' side -----------------------------------------------------------------------------------

    def subscribe(self, wake: Callable[[], None]) -> int:
        """Call `wake` after every commit from now on; returns the seq of the next entry."""
        with self._lock:
            self._wakers.add(wake)
            return self._next_seq

    def unsubscribe(self, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wakers.discard(wake)

    def read(self, cursor: int, limit: int = 256) -> list[Entry]:
        """Up to `limit` entries from seq `cursor` on; FellBehind if the stream is more than `capacity` behind."""
        with self._lock:
            if self._next_seq - cursor > self.capacity:
                raise FellBehind(f"{self._next_seq - cursor} commits behind, more than the feed keeps ({self.capacity})")
            start = cursor - (self._next_seq - len(self._entries))
            if start < 0:  # only after a wipe, which drops every stream anyway
                raise FellBehind("the database was wiped")
            return self._entries[start : start + limit]

    # -- resume tokens --------------------------------------------------------------------------------------

    def token(self, micros: int) -> bytes:
        return _TOKEN_VERSION + self.epoch + micros.to_bytes(8, "big")

    def token_time(self, token: bytes) -> int | None:
        """The snapshot time a token names, or None if it is not one of this feed's current epoch."""
        if len(token) != _TOKEN_LENGTH or token[:1] != _TOKEN_VERSION or token[1:9] != self.epoch:
            return None
        return int.from_bytes(token[9:], "big")
