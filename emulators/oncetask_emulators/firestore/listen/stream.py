"""One Listen stream: its targets, its subscription to the database's change feed, and the responses it owes.

Two threads serve a stream: gRPC's worker runs `responses()` (every message is produced and sent there, so
they go out in order), and a reader thread takes the client's requests off the wire and wakes it. The worker
sleeps until a request, a commit that concerns it, a drop or the heartbeat wakes it. While the client does not
read, gRPC flow control holds the worker in a send; commits wait in the subscription's bounded queue meanwhile.

Consistency: the stream keeps `snapshot`, a time at which every target reflects every commit at or before it.
A new target is read at a fresh read time `t` after the stream has applied every commit up to `t`, so all targets
stay at one snapshot; each commit is then applied to all targets and, if it changed anything the client sees,
closed by a global NO_CHANGE at the commit's time. Streams are only dropped between two snapshots.

The end: a client that cancels (the Python client) ends the RPC at once. A client that half-closes (sends no more
requests: the Node.js client's unsubscribe) gets the stream ended with OK, as production ends it: the Node.js
client's own system tests unsubscribe, terminate and exit against production, which they could not if the call
stayed open (grpc-js keeps a process alive while a call is pending). Requests that came before the half-close
are answered first, in order, as they came before it on the wire.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence

import grpc

from ..errors import EmulatorError, FailedPrecondition, InvalidArgument, PermissionDenied
from ..protos import firestore, write
from ..rules.gate import RulesGate
from ..stats import CallCounters
from ..store import Database, Store, to_timestamp
from .access import ListenAccess
from .feed import ChangeFeed, Entry, FellBehind, Subscription
from .targets import Move, WatchTarget, compile_target, responses

ListenRequestPb = firestore.ListenRequest.pb()
ListenResponsePb = firestore.ListenResponse.pb()
TargetPb = firestore.Target.pb()
TargetChangePb = firestore.TargetChange.pb()
ChangeType = TargetChangePb.TargetChangeType
ExistenceFilterPb = write.ExistenceFilter.pb()

HEARTBEAT_SECONDS = 60.0  # production sends a fresh resume token about once a minute on a quiet stream


class StreamDropped(EmulatorError):
    """The server closes the stream; the client reconnects and resumes from its last token."""

    code = grpc.StatusCode.UNAVAILABLE


class ListenStream:
    def __init__(self, store: Store, feed_of: Callable[[Database], ChangeFeed], counters: CallCounters,
                 rules: RulesGate | None = None, metadata: Sequence[tuple[str, str]] | None = None):
        self._store = store
        self._feed_of = feed_of
        self._counters = counters
        self._rules = rules or RulesGate()  # without rules loaded it allows everything
        self._metadata = metadata  # the caller, for security rules (see access.py)
        self._access: ListenAccess | None = None
        self._wake = threading.Event()
        self._requests: deque[ListenRequestPb] = deque()
        self._closed = False
        self._half_closed = False  # the client sent its last request; set after that request is queued
        self._drop_reason: str | None = None
        self.db: Database | None = None
        self._feed: ChangeFeed | None = None
        self._subscription: Subscription | None = None
        self._epoch = b""
        self.targets: dict[int, WatchTarget] = {}
        self._used_ids: set[int] = set()
        self._assigns_ids: bool | None = None  # decided by the first target: server-assigned IDs (0) or not
        self._snapshot = 0  # every target reflects every commit at or before this time (micros)
        self._last_global = time.monotonic()

    # -- called from other threads ----------------------------------------------------------------------------

    def close(self) -> None:
        """The RPC ended (client cancel, deadline, server stop): stop producing."""
        self._closed = True
        self._wake.set()

    def drop(self, reason: str) -> None:
        """Close the stream with UNAVAILABLE at its next snapshot boundary (the client resumes)."""
        self._drop_reason = reason
        self._wake.set()

    def read_requests(self, request_iterator: Iterable[ListenRequestPb]) -> None:
        try:
            for request in request_iterator:
                self._requests.append(request)
                self._wake.set()
        except Exception:  # noqa: BLE001 - a cancelled call ends the iterator with an error; close() follows
            return
        # The iterator ended without an error: the client half-closed. Set only now, after its last request is
        # queued, so that a worker that sees the flag finds every request before it in the queue.
        self._half_closed = True
        self._wake.set()

    # -- the worker -------------------------------------------------------------------------------------------

    def responses(self) -> Iterator[ListenResponsePb | bytes]:
        try:
            while True:
                timeout = None  # without targets there is nothing to beat for
                if self.targets:
                    timeout = max(0.0, HEARTBEAT_SECONDS - (time.monotonic() - self._last_global))
                self._wake.wait(timeout)
                self._wake.clear()  # before looking: a wake-up from now on is kept for the next wait
                if self._closed:
                    return
                self._check_drop()
                if self._access is not None and self._access.rules_replaced():
                    yield from self._recheck()
                half_closed = self._half_closed  # read before the queue is drained (see read_requests)
                while self._requests:
                    yield from self._handle(self._requests.popleft())
                if half_closed:
                    return  # every request is answered and no more can come: the stream ends with OK
                if self._feed is not None:
                    yield from self._catch_up(until=None)
                    if self.targets and time.monotonic() - self._last_global >= HEARTBEAT_SECONDS:
                        yield from self._sync_to_now()
                        yield self._global(self._snapshot)
        finally:
            if self._feed is not None and self._subscription is not None:
                self._feed.unsubscribe(self._subscription)

    def _check_drop(self) -> None:
        if self._drop_reason is not None:
            raise StreamDropped(self._drop_reason)
        if self._feed is not None and self._feed.epoch != self._epoch:
            raise StreamDropped("The database was wiped; listen again.")

    # -- requests ---------------------------------------------------------------------------------------------

    def _handle(self, request: ListenRequestPb) -> Iterator[ListenResponsePb]:
        self._attach(request.database)
        kind = request.WhichOneof("target_change")
        if kind == "add_target":
            yield from self._add(request.add_target)
        elif kind == "remove_target":
            yield from self._remove(request.remove_target)
        else:
            raise InvalidArgument("A ListenRequest must set add_target or remove_target.")

    def _attach(self, database: str) -> None:
        if self.db is not None:
            if database != self.db.key:
                raise InvalidArgument(
                    f"All requests of a Listen stream must name the same database: {database!r} is not {self.db.key!r}."
                )
            return
        parts = database.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "databases" or not parts[1] or not parts[3]:
            raise InvalidArgument(f"database {database!r} is not of the form projects/{{project}}/databases/{{database}}")
        self._counters.count("Listen", database)
        self.db = self._store.database(database)
        self._feed = self._feed_of(self.db)
        self._epoch = self._feed.epoch
        self._subscription = self._feed.subscribe(self._wake.set)
        self._access = ListenAccess(self._rules, self._metadata, self.db)

    def _add(self, target: TargetPb) -> Iterator[ListenResponsePb]:
        assert self.db is not None and self._feed is not None
        target_id = target.target_id
        if target_id < 0:
            raise InvalidArgument(f"Target ID {target_id} is invalid: target IDs must be positive (or 0 to have one assigned).")
        if self._assigns_ids is None:
            self._assigns_ids = target_id == 0
        if target_id == 0:
            if not self._assigns_ids:
                raise InvalidArgument("Target ID 0 (server-assigned) cannot follow targets with client-chosen IDs.")
            target_id = max(self._used_ids, default=0) + 1
        elif self._assigns_ids:
            yield _target_change(ChangeType.REMOVE, [target_id], cause=InvalidArgument(
                f"Target ID {target_id} is not allowed: this stream has server-assigned target IDs (0)."))
            return
        elif target_id in self.targets:
            raise InvalidArgument(f"Target ID {target_id} is already in use on this stream.")
        self._used_ids.add(target_id)
        try:
            watch = compile_target(target, self.db, target_id)
            since = self._resume_point(target)
        except EmulatorError as error:
            yield _target_change(ChangeType.REMOVE, [target_id], cause=error)
            return
        resume = target.WhichOneof("resume_type")

        # Commits that concern the target are delivered from here on; those before the read time below are in
        # the target's initial state.
        assert self._subscription is not None
        self._feed.watch(self._subscription, watch.interests())
        yield from self._sync_to_now()
        db = self.db
        try:  # at the snapshot the target starts from, so nothing it sends was read past the rules
            assert self._access is not None
            self._access.check(watch, lambda name: db.get(name, self._snapshot))
        except PermissionDenied as denied:
            self._feed.unwatch(self._subscription, watch.interests())
            yield _target_change(ChangeType.REMOVE, [target_id], cause=denied)
            return
        now = watch.results(self.db, self._snapshot)
        yield _target_change(ChangeType.ADD, [target_id])
        if resume is not None and since is None:
            # The token is unknown (another emulator run, a wiped database, not ours) or its history is no longer
            # kept: the client must drop what it has, and gets the whole result again.
            yield _target_change(ChangeType.RESET, [target_id])
        if since is not None:
            watch.view = {name: doc.update_time for name, doc in watch.results(self.db, since).items()}
        moves = watch.reset_view(now)
        yield from responses(moves, lambda name: db.get(name, self._snapshot), to_timestamp(self._snapshot))
        if since is not None:
            # As production after a resume: how many documents the target holds, for the client to check its view.
            yield ListenResponsePb(filter=ExistenceFilterPb(target_id=target_id, count=len(now)))
        token = self._feed.token(self._snapshot)
        yield _target_change(ChangeType.CURRENT, [target_id], token=token, read_time=self._snapshot)
        yield self._global(self._snapshot)
        if target.once:
            self._feed.unwatch(self._subscription, watch.interests())
            yield _target_change(ChangeType.REMOVE, [target_id])
        else:
            self.targets[target_id] = watch

    def _resume_point(self, target: TargetPb) -> int | None:
        """The time the client's view of the target is from: None if it has none, or if the token or read time
        cannot be resumed from (not a token of this database's current history, or older than the versions kept).
        A read_time in the future is an error (InvalidArgument)."""
        assert self.db is not None and self._feed is not None
        resume = target.WhichOneof("resume_type")
        if resume == "resume_token":
            micros = self._feed.token_time(target.resume_token)
            if micros is None:
                return None
            requested = to_timestamp(micros)
        elif resume == "read_time":
            requested = target.read_time
        else:
            return None
        try:
            return self.db.read_time(requested)
        except FailedPrecondition:  # older than the versions kept: the state then can no longer be read
            return None
        except InvalidArgument:
            if resume == "read_time":
                raise
            return None  # a token "from the future" is no token of ours

    def _remove(self, target_id: int) -> Iterator[ListenResponsePb]:
        if target_id in self.targets:
            watch = self.targets.pop(target_id)
            assert self._feed is not None and self._subscription is not None
            self._feed.unwatch(self._subscription, watch.interests())
            yield _target_change(ChangeType.REMOVE, [target_id])
        elif target_id not in self._used_ids:
            raise InvalidArgument(f"Target ID {target_id} is not a target of this stream.")
        # else: the server already removed it (an error, `once`); the client's remove crossed ours.

    # -- commits ----------------------------------------------------------------------------------------------

    def _sync_to_now(self) -> Iterator[ListenResponsePb]:
        """Apply every commit up to a fresh read time, and make that time the stream's snapshot."""
        assert self.db is not None
        now = self.db.read_time()  # every commit at or before `now` has been delivered to the subscription
        yield from self._catch_up(until=now)
        self._snapshot = max(self._snapshot, now)

    def _catch_up(self, until: int | None) -> Iterator[ListenResponsePb | bytes]:
        assert self._subscription is not None
        while True:
            try:
                entries = self._subscription.take(until)
            except FellBehind as behind:
                self._check_drop()  # a wipe says so more precisely
                raise StreamDropped(f"The Listen stream fell behind the writes ({behind}); resume from the last token.")
            if not entries:
                return
            for entry in entries:
                self._check_drop()
                if entry.micros > self._snapshot:
                    yield from self._apply(entry)
                    self._snapshot = entry.micros

    def _apply(self, entry: Entry) -> Iterator[ListenResponsePb | bytes]:
        assert self.db is not None and self._access is not None
        for target_id, watch in list(self.targets.items()):
            try:  # before any of the commit's versions is sent
                self._access.check_versions(watch, entry.changes)
            except PermissionDenied as denied:
                yield self._revoke(target_id, denied)
        moves: list[Move] = []
        for watch in self.targets.values():
            moves += watch.apply(self.db, entry.micros, entry.changes)
        if not moves:
            return
        # Listeners of the same targets owe the same bytes for a commit (the Python client always uses one
        # target ID): they are built and serialized once. Only moves carrying the commit's own versions are
        # shared, since a projection or a window's version is particular to its target.
        key = _shared_key(moves, entry)
        encoded = entry.encoded.get(key) if key is not None else None
        if encoded is None:
            db = self.db

            def current(name: str):  # a document that left a window without being written is still there
                return entry.changes[name] if name in entry.changes else db.get(name, entry.micros)

            encoded = [r.SerializeToString() for r in responses(moves, current, to_timestamp(entry.micros))]
            encoded.append(self._global(entry.micros).SerializeToString())
            if key is not None:
                entry.encoded[key] = encoded
        self._last_global = time.monotonic()
        yield from encoded

    def _recheck(self) -> Iterator[ListenResponsePb]:
        """The project's rules were replaced: every target is checked again, at the client's snapshot."""
        assert self.db is not None and self._access is not None
        db = self.db
        for target_id, watch in list(self.targets.items()):
            try:
                self._access.check(watch, lambda name: db.get(name, self._snapshot))
            except PermissionDenied as denied:
                yield self._revoke(target_id, denied)

    def _revoke(self, target_id: int, cause: PermissionDenied) -> ListenResponsePb:
        """Remove a target the rules no longer allow; the client learns why from the REMOVE's cause."""
        assert self._feed is not None and self._subscription is not None
        watch = self.targets.pop(target_id)
        self._feed.unwatch(self._subscription, watch.interests())
        return _target_change(ChangeType.REMOVE, [target_id], cause=cause)

    def _global(self, micros: int) -> ListenResponsePb:
        """A global NO_CHANGE: every target is consistent at `micros`; the token resumes all of them."""
        assert self._feed is not None
        self._last_global = time.monotonic()
        return _target_change(ChangeType.NO_CHANGE, [], token=self._feed.token(micros), read_time=micros)


def _shared_key(moves: list[Move], entry: Entry) -> tuple | None:
    """What makes this stream's responses to `entry` the same as another's, or None if they cannot be shared."""
    key = []
    for m in moves:
        if m.doc is not None and m.doc is not entry.changes.get(m.name):
            return None
        seen = (m.seen.seconds, m.seen.nanos) if m.seen is not None else None
        key.append((m.target_id, m.name, m.doc is not None, seen))
    return tuple(key)


def _target_change(kind: int, target_ids: list[int], *, cause: EmulatorError | None = None,
                   token: bytes = b"", read_time: int | None = None) -> ListenResponsePb:
    change = TargetChangePb(target_change_type=kind, target_ids=target_ids, resume_token=token)
    if cause is not None:
        change.cause.code = cause.code.value[0]
        change.cause.message = cause.message
    if read_time is not None:
        change.read_time.CopyFrom(to_timestamp(read_time))
    return ListenResponsePb(target_change=change)
