"""Document locks with wound-wait, as Firestore's pessimistic transactions take them.

Reads in a read-write transaction take shared locks; a commit takes exclusive locks on what it writes.
On a conflict the *older* party (by priority, which a retried transaction keeps) wounds the younger holder:
the holder loses its locks at once and its commit will answer ABORTED. A younger requester waits for an older
holder, for a bounded time. A non-transactional write never wounds (it waits, as in production) and anyone it
stands in the way of wounds it (it lets go and starts over), and it takes all its locks in one sorted pass.
So a wait only ever points from younger to older, or from a non-transactional write to someone: no cycle of
waits (deadlock) can form, and the time bound covers a holder that simply went idle.

One Condition per database guards the table; waiting releases it, so no lock is held across a wait.
"""

from __future__ import annotations

import enum
import itertools
import threading
import time
from collections.abc import Iterable


class Mode(enum.Enum):
    SHARED = "shared"
    EXCLUSIVE = "exclusive"


class Wounded(Exception):
    """The requester was wounded by an older transaction while it waited."""


class LockTimeout(Exception):
    """The lock could not be had within the wait bound."""


_sequence = itertools.count()


class Owner:
    """Whoever holds locks: a read-write transaction, or one non-transactional commit."""

    def __init__(self, inherited: tuple[float, int, int] | None = None, *, wounds: bool = True):
        # Smaller is older: (start time, sequence of the first attempt, own sequence). A retry inherits the
        # first two from the attempt it retries; its own sequence keeps every priority unique, so of any
        # two owners one is always older and nobody waits for an equal.
        own = next(_sequence)
        start, first = (inherited[0], inherited[1]) if inherited else (time.monotonic(), own)
        self.priority = (start, first, own)
        self.wounds = wounds  # False for a non-transactional write: it waits, as in production, never aborts
        self.held: dict[str, Mode] = {}
        self.wounded = False
        self.committing = False  # past the point of no return: may no longer be wounded


class LockTable:
    """Shared/exclusive locks on document names for one database."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holders: dict[str, dict[Owner, Mode]] = {}
        self._closed = False

    def acquire(self, owner: Owner, names: Iterable[str], mode: Mode, timeout: float) -> None:
        """Lock `names` (in sorted order) for `owner`; raise Wounded or LockTimeout without waiting longer."""
        deadline = time.monotonic() + timeout
        with self._cond:
            for name in sorted(set(names)):
                self._acquire_one(owner, name, mode, deadline)

    def begin_commit(self, owner: Owner) -> bool:
        """Mark `owner` as committing unless it was wounded; True when it may apply its writes."""
        with self._cond:
            if owner.wounded:
                return False
            owner.committing = True
            return True

    def release_all(self, owner: Owner) -> None:
        with self._cond:
            self._release_all(owner)
            self._cond.notify_all()

    def wound(self, owner: Owner) -> None:
        """Invalidate `owner` from outside (expiry, wipe): it loses its locks and cannot commit."""
        with self._cond:
            if not owner.committing:
                owner.wounded = True
                self._release_all(owner)
                self._cond.notify_all()

    def close(self) -> None:
        """Shutting down: every waiter gives up now instead of at its deadline."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _acquire_one(self, owner: Owner, name: str, mode: Mode, deadline: float) -> None:
        while True:
            if owner.wounded:
                raise Wounded()
            if owner.held.get(name) is Mode.EXCLUSIVE or (owner.held.get(name) is mode):
                return
            holders = self._holders.get(name, {})
            conflicts = [
                other
                for other, held in holders.items()
                if other is not owner and (mode is Mode.EXCLUSIVE or held is Mode.EXCLUSIVE)
            ]
            for other in conflicts:
                older = not other.wounds or owner.priority < other.priority
                if owner.wounds and older and not other.committing:
                    other.wounded = True
                    self._release_all(other)
            if not any(other in holders for other in conflicts):
                self._holders.setdefault(name, {})[owner] = mode
                owner.held[name] = mode
                if conflicts:  # wounded owners may be waiting elsewhere: let them see it
                    self._cond.notify_all()
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                raise LockTimeout(name)
            self._cond.wait(remaining)

    def _release_all(self, owner: Owner) -> None:
        for name in owner.held:
            holders = self._holders.get(name)
            if holders is not None:
                holders.pop(owner, None)
                if not holders:
                    del self._holders[name]
        owner.held = {}
