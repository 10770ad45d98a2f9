"""The change feed of one database: each commit, in commit order, handed to the Listen streams it concerns.

A commit is offered to the feed while it still holds the database's commit lock, so streams receive commits in
commit-time order, and every commit at or before a read time the database has handed out has been delivered
before that read time is. The feed keeps an index of what each stream listens to (document names, collections,
collection groups), so a commit wakes only the streams it concerns: a thousand listeners on a thousand job
documents cost a commit one lookup, not a thousand wake-ups.

Writers never wait for readers: each stream has a bounded queue of commits; one that falls further behind is
marked overflowed, and the stream is dropped (UNAVAILABLE) to resume from its last token (see stream.py).

Resume tokens name a point of this feed's history: a version byte, the feed's epoch (new at every start of the
emulator and every wipe of the database, after which older history is gone) and the snapshot time.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..protos import DocumentPb
from . import DEFAULT_CAPACITY
_TOKEN_VERSION = b"\x01"
_TOKEN_LENGTH = 1 + 8 + 8

# What a target listens to: ("document", name), ("collection", "<parent>/<collection id>"), or
# ("group", parent, collection id) for a collection group ("" as collection id: every collection).
Interest = tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    micros: int  # commit time
    changes: Mapping[str, DocumentPb | None]  # document name -> its version after the commit (None: deleted)
    # Serialized responses, shared by the streams that owe the same ones for this commit (see stream.py).
    encoded: dict[tuple, list[bytes]] = field(default_factory=dict, compare=False, repr=False)


class FellBehind(Exception):
    """More commits waited for the stream than its queue holds."""


class Subscription:
    """One stream's queue of the commits that concern it."""

    def __init__(self, wake: Callable[[], None], capacity: int):
        self._wake = wake
        self._capacity = capacity
        self._entries: deque[Entry] = deque()
        self.overflowed = False
        self.interests: Counter[Interest] = Counter()  # guarded by the feed's lock

    def deliver(self, entry: Entry) -> None:
        """Called in commit order (under the database's commit lock)."""
        if not self.overflowed:
            if len(self._entries) >= self._capacity:
                self.overflowed = True
                self._entries.clear()  # the stream will be dropped: free the memory now
            else:
                self._entries.append(entry)
        self._wake()

    def take(self, until: int | None, limit: int = 256) -> list[Entry]:
        """The next waiting commits (up to `limit`, none later than `until`); FellBehind if some were lost."""
        if self.overflowed:
            raise FellBehind(f"more than {self._capacity} commits waited for this stream")
        taken: list[Entry] = []
        while self._entries and len(taken) < limit and (until is None or self._entries[0].micros <= until):
            taken.append(self._entries.popleft())
        return taken


class ChangeFeed:
    """Observes one `store.Database` (see `CommitObserver` there) and delivers its commits to subscriptions."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        if capacity < 1:
            raise ValueError("a stream's queue holds at least one commit")
        self.capacity = capacity
        self.epoch = secrets.token_bytes(8)
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self._documents: dict[str, set[Subscription]] = {}
        self._collections: dict[str, set[Subscription]] = {}
        self._groups: dict[str, dict[str, set[Subscription]]] = {}  # collection id -> parent -> subscriptions

    # -- the database's side (called under its commit lock: keep it short) ------------------------------------

    def committed(self, micros: int, changes: Mapping[str, DocumentPb | None]) -> None:
        with self._lock:
            concerned = self._concerned(changes)
        if concerned:
            entry = Entry(micros, changes)
            for subscription in concerned:
                subscription.deliver(entry)

    def wiped(self) -> None:
        """The database was emptied outside any commit: its history is gone, and so is every stream's place in it."""
        with self._lock:
            self.epoch = secrets.token_bytes(8)
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            subscription.deliver(Entry(0, {}))  # wakes it; it sees the new epoch before it looks at the entry

    # -- the streams' side -----------------------------------------------------------------------------------

    def subscribe(self, wake: Callable[[], None]) -> Subscription:
        subscription = Subscription(wake, self.capacity)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)
            for interest in list(subscription.interests):
                self._forget(subscription, interest)
            subscription.interests.clear()

    def watch(self, subscription: Subscription, interests: Iterable[Interest]) -> None:
        """From now on, deliver the commits that touch `interests` to `subscription`."""
        with self._lock:
            for interest in interests:
                subscription.interests[interest] += 1
                if subscription.interests[interest] == 1:
                    self._index(interest).add(subscription)

    def unwatch(self, subscription: Subscription, interests: Iterable[Interest]) -> None:
        with self._lock:
            for interest in interests:
                subscription.interests[interest] -= 1
                if subscription.interests[interest] <= 0:
                    del subscription.interests[interest]
                    self._forget(subscription, interest)

    # -- resume tokens --------------------------------------------------------------------------------------

    def token(self, micros: int) -> bytes:
        return _TOKEN_VERSION + self.epoch + micros.to_bytes(8, "big")

    def token_time(self, token: bytes) -> int | None:
        """The snapshot time a token names, or None if it is not one of this feed's current epoch."""
        if len(token) != _TOKEN_LENGTH or token[:1] != _TOKEN_VERSION or token[1:9] != self.epoch:
            return None
        return int.from_bytes(token[9:], "big")

    # -- the index (under the lock) ------------------------------------------------------------------------

    def _index(self, interest: Interest) -> set[Subscription]:
        kind = interest[0]
        if kind == "document":
            return self._documents.setdefault(interest[1], set())
        if kind == "collection":
            return self._collections.setdefault(interest[1], set())
        return self._groups.setdefault(interest[2], {}).setdefault(interest[1], set())

    def _forget(self, subscription: Subscription, interest: Interest) -> None:
        kind = interest[0]
        if kind == "group":
            parents = self._groups.get(interest[2], {})
            found = parents.get(interest[1])
            if found is not None:
                found.discard(subscription)
                if not found:
                    del parents[interest[1]]
                if not parents:
                    self._groups.pop(interest[2], None)
            return
        index = self._documents if kind == "document" else self._collections
        found = index.get(interest[1])
        if found is not None:
            found.discard(subscription)
            if not found:
                del index[interest[1]]

    def _concerned(self, changes: Iterable[str]) -> set[Subscription]:
        concerned: set[Subscription] = set()
        for name in changes:
            if name in self._documents:
                concerned |= self._documents[name]
            collection = name.rpartition("/")[0]
            if collection in self._collections:
                concerned |= self._collections[collection]
            if self._groups:
                for collection_id in (collection.rpartition("/")[2], ""):
                    for parent, subscriptions in self._groups.get(collection_id, {}).items():
                        if name.startswith(parent + "/"):
                            concerned |= subscriptions
        return concerned
