"""Transactions: their IDs, kinds and lifetimes, and the expiry of idle ones.

A read-write transaction is a lock `Owner` of its database's LockTable; a read-only one just remembers its
snapshot time. An ID that is unknown, expired or finished answers INVALID_ARGUMENT, as production does.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from .errors import InvalidArgument
from .locks import Owner
from .store import Database

_REMEMBER_ENDED = 100_000


class Transaction(Owner):
    """One transaction, read-write (an Owner of document locks) or read-only (a snapshot time)."""

    def __init__(self, db: Database, read_only: bool, read_micros: int | None, inherited=None):
        super().__init__(inherited)
        self.id = secrets.token_bytes(16)
        self.db = db
        self.read_only = read_only
        self.read_micros = read_micros  # the snapshot of a read-only transaction
        self.started = time.monotonic()
        self.last_used = self.started


@dataclass
class Lifetimes:
    idle_seconds: float = 60.0  # production expires a read-write transaction idle for about a minute
    max_seconds: float = 270.0  # and none may live longer than 270 s


class Transactions:
    """Every open transaction, by ID, across all databases."""

    def __init__(self, lifetimes: Lifetimes):
        self.lifetimes = lifetimes
        self._open: dict[bytes, Transaction] = {}
        # Recently finished transactions and their priorities: a retry after ABORTED names one of these
        # (retry_transaction) to keep its place in line, and the client rolls back one whose commit failed.
        self._ended: OrderedDict[bytes, tuple[float, int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def begin(self, db: Database, *, read_only: bool, read_micros: int | None, retry_id: bytes = b"") -> Transaction:
        """Open a transaction. A retry of an aborted read-write one keeps that one's place in line (priority),
        so a transaction that keeps losing to newcomers eventually becomes the oldest and wins."""
        inherited = None
        if retry_id:
            with self._lock:
                previous = self._open.get(retry_id)
                inherited = previous.priority if previous is not None else self._ended.get(retry_id)
        txn = Transaction(db, read_only, read_micros, inherited)
        with self._lock:
            self._open[txn.id] = txn
        return txn

    def get(self, txn_id: bytes, db: Database) -> Transaction:
        """The open transaction `txn_id` of `db`, or INVALID_ARGUMENT."""
        txn = self._open.get(txn_id)
        if txn is not None and self._expired(txn, time.monotonic()):
            self.end(txn)
            txn = None
        if txn is None or txn.db is not db:
            raise InvalidArgument(f"transaction {txn_id.hex() or '(empty)'} is invalid or expired")
        txn.last_used = time.monotonic()
        return txn

    def end(self, txn: Transaction) -> None:
        """Forget `txn` and release its locks (commit done, rollback, abort or expiry)."""
        with self._lock:
            self._open.pop(txn.id, None)
            self._ended[txn.id] = txn.priority
            while len(self._ended) > _REMEMBER_ENDED:
                self._ended.popitem(last=False)
        txn.db.locks.release_all(txn)

    def rollback(self, txn_id: bytes, db: Database) -> None:
        """End `txn_id`. Rolling back one that already ended (its commit failed) is fine, as in production;
        an ID this emulator never issued is INVALID_ARGUMENT."""
        txn = self._open.get(txn_id)
        if txn is not None and txn.db is db:
            self.end(txn)
            return
        with self._lock:
            known = txn_id in self._ended
        if not known:
            raise InvalidArgument(f"transaction {txn_id.hex() or '(empty)'} is invalid or expired")

    def expire(self) -> int:
        """End every transaction past its idle or lifetime bound; returns how many."""
        now = time.monotonic()
        with self._lock:
            stale = [t for t in self._open.values() if self._expired(t, now)]
        for txn in stale:
            txn.db.locks.wound(txn)
            self.end(txn)
        return len(stale)

    def drop_database(self, db: Database) -> None:
        """End the transactions of a wiped database: what they read no longer exists."""
        with self._lock:
            doomed = [t for t in self._open.values() if t.db is db and not t.committing]
        for txn in doomed:
            db.locks.wound(txn)
            self.end(txn)

    def _expired(self, txn: Transaction, now: float) -> bool:
        if txn.committing:
            return False
        return now - txn.last_used > self.lifetimes.idle_seconds or now - txn.started > self.lifetimes.max_seconds

