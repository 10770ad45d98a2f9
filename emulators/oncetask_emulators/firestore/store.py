"""The documents of every database, kept as versions (MVCC) so a read at a past time sees one snapshot.

Each database has its own clock, commit lock and lock table. A commit applies all its writes at one commit
time under the database's commit lock (held only for in-memory work and the SQLite write, never across a wait
for a document lock), so readers see either all of a commit or none of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from . import transforms
from .errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from .locks import LockTable
from .protos import DocumentPb, MapValuePb, Timestamp, ValuePb, WritePb, WriteResultPb

if TYPE_CHECKING:  # sqlite3 is imported only when --data-dir asks for persistence
    from .persistence import SqlitePersistence


MAX_DOCUMENT_BYTES = 1_048_576


def to_timestamp(micros: int) -> Timestamp:
    return Timestamp(seconds=micros // 1_000_000, nanos=(micros % 1_000_000) * 1000)


def to_micros(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1000


def now_micros() -> int:
    return time.time_ns() // 1000


def write_target(w: WritePb) -> str:
    """The document a Write touches."""
    kind = w.WhichOneof("operation")
    if kind == "update":
        return w.update.name
    if kind == "delete":
        return w.delete
    if kind == "transform":
        return w.transform.document
    raise InvalidArgument("write has no operation: set one of update, delete or transform")


class CommitObserver(Protocol):
    """Told of every commit, in commit order, under the commit lock (so it must be quick): Listen's change feed."""

    def committed(self, micros: int, changes: Mapping[str, DocumentPb | None]) -> None: ...

    def wiped(self) -> None: ...


@dataclass(frozen=True)
class Version:
    micros: int  # commit time
    doc: DocumentPb | None  # None: deleted at this time


class Database:
    """One `projects/{p}/databases/{d}`: versions of its documents, its clock and its document locks."""

    def __init__(self, key: str, retention_micros: int, persistence: SqlitePersistence | None):
        self.key = key
        self.root = key + "/documents"
        self.locks = LockTable()
        self._commit_lock = threading.Lock()
        self._versions: dict[str, list[Version]] = {}
        self._clock = 0  # every commit at or before it is installed; later commits get later times
        self._retention = retention_micros
        self._persistence = persistence
        self.observers: list[CommitObserver] = []

    # -- time ---------------------------------------------------------------------------------------------

    def read_time(self, requested: Timestamp | None = None) -> int:
        """A consistent read time: now, or `requested` after checking it is neither future nor pruned.

        Taken under the commit lock so no commit at an earlier time is still being installed, and pushes
        the clock forward so any later commit gets a strictly later time.
        """
        with self._commit_lock:
            now = max(now_micros(), self._clock)
            self._clock = now
            if requested is None:
                return now
            wanted = to_micros(requested)
            if wanted > now:
                raise InvalidArgument(f"read_time {requested.ToJsonString()} is in the future")
            if wanted < now - self._retention:
                raise FailedPrecondition(
                    f"read_time {requested.ToJsonString()} is older than the emulator's version retention"
                )
            return wanted

    # -- reads ---------------------------------------------------------------------------------------------

    def get(self, name: str, at: int | None = None) -> DocumentPb | None:
        """The document as of `at` (latest when None), or None when it does not exist then."""
        versions = self._versions.get(name)
        if not versions:
            return None
        if at is None:
            return versions[-1].doc
        for version in reversed(versions):
            if version.micros <= at:
                return version.doc
        return None

    def documents_under(self, prefix: str, at: int | None = None) -> list[DocumentPb]:
        """Every document whose name starts with `prefix` + "/", as of `at`."""
        start = prefix + "/"
        with self._commit_lock:  # copying the keys while a commit inserts new ones would fail
            names = [name for name in self._versions if name.startswith(start)]
        found = (self.get(name, at) for name in names)
        return [doc for doc in found if doc is not None]

    # -- writes --------------------------------------------------------------------------------------------

    def commit(self, writes: Sequence[WritePb]) -> tuple[int, list[WriteResultPb]]:
        """Apply `writes` in order at one commit time, all or none. Returns (commit time, write results).

        The caller holds exclusive document locks on every target, so no transaction can read in between.
        """
        with self._commit_lock:
            commit_micros = max(now_micros(), self._clock + 1)
            commit_ts = to_timestamp(commit_micros)
            pending: dict[str, DocumentPb | None] = {}
            results = []
            for w in writes:
                name = write_target(w)
                current = pending[name] if name in pending else self.get(name)
                _check_precondition(w, name, current, commit_micros)
                new_fields, transform_results = transforms.apply_write(
                    current.fields if current is not None else None, w, commit_ts
                )
                result = WriteResultPb(transform_results=transform_results)
                if new_fields is None:
                    pending[name] = None
                else:
                    new = _next_version(name, current, new_fields, commit_ts)
                    result.update_time.CopyFrom(new.update_time)
                    pending[name] = new
                results.append(result)
            if self._persistence is not None and pending:
                self._persistence.save(self.key, pending)
            for name, doc in pending.items():
                self._install(name, Version(commit_micros, doc), commit_micros)
            self._clock = commit_micros
            if pending:
                for observer in self.observers:  # `pending` is handed over: nothing changes it after this
                    observer.committed(commit_micros, pending)
            return commit_micros, results

    def load(self, doc: DocumentPb) -> None:
        """Install a document read back from disk."""
        micros = to_micros(doc.update_time)
        self._versions[doc.name] = [Version(micros, doc)]
        self._clock = max(self._clock, micros)

    def wipe(self) -> None:
        with self._commit_lock:
            if self._persistence is not None:
                self._persistence.wipe(self.key)
            self._versions = {}
            for observer in self.observers:
                observer.wiped()

    def _install(self, name: str, version: Version, now: int) -> None:
        """Add a version and drop those no read can need any more (older than the retention window,
        except the newest of them, which is still the state at the window's start)."""
        old = self._versions.get(name, [])
        cutoff = now - self._retention
        keep_from = 0
        for i, v in enumerate(old):
            if v.micros <= cutoff:
                keep_from = i
        # A new list rather than an in-place edit: readers iterate versions without the commit lock.
        self._versions[name] = [*old[keep_from:], version]


def _check_precondition(w: WritePb, name: str, current: DocumentPb | None, commit_micros: int) -> None:
    """NOT_FOUND / ALREADY_EXISTS for `exists`; for `update_time`, INVALID_ARGUMENT when it is not a time a
    document could have (not microsecond aligned, or later than this commit: production's answer, which the
    Python client's system tests check), else FAILED_PRECONDITION when it is not the stored version's."""
    if not w.HasField("current_document"):
        return
    condition = w.current_document
    if condition.WhichOneof("condition_type") == "exists":
        if condition.exists and current is None:
            raise NotFound(f"No document to update: {name}")
        if not condition.exists and current is not None:
            raise AlreadyExists(f"Document already exists: {name}")
    elif condition.WhichOneof("condition_type") == "update_time":
        wanted = condition.update_time
        if wanted.nanos % 1000:
            raise InvalidArgument(
                f"Precondition update_time {wanted.ToJsonString()} must be microsecond aligned."
            )
        if to_micros(wanted) > commit_micros:
            raise InvalidArgument(
                f"Precondition update_time {wanted.ToJsonString()} is in the future: no version of {name} "
                "can have it."
            )
        if current is None or current.update_time != condition.update_time:
            raise FailedPrecondition(
                f"the stored version of {name} does not match the required update_time "
                f"{condition.update_time.ToJsonString()}"
            )


def _next_version(name: str, current: DocumentPb | None, fields, commit_ts: Timestamp) -> DocumentPb:
    """The document after a write; a write that changes no field keeps the old update_time (as production)."""
    if current is not None and _same_fields(current.fields, fields):
        return current
    doc = DocumentPb(name=name, fields=fields, update_time=commit_ts)
    doc.create_time.CopyFrom(current.create_time if current is not None else commit_ts)
    size = doc.ByteSize()
    if size > MAX_DOCUMENT_BYTES:
        raise InvalidArgument(
            f"Document {name} cannot be written because its size ({size:,} bytes) exceeds the maximum "
            f"allowed size of {MAX_DOCUMENT_BYTES:,} bytes."
        )
    return doc


def _same_fields(a, b) -> bool:
    # Protobuf equality, not Firestore's value equality: writing 3.0 over a stored 3 changes the stored type,
    # so it is a real write, as in production.
    return MapValuePb(fields=a) == MapValuePb(fields=b)


class Store:
    """All databases of all projects, created on first use."""

    def __init__(self, *, retention_seconds: float = 3600.0, persistence: SqlitePersistence | None = None):
        self._databases: dict[str, Database] = {}
        self._lock = threading.Lock()
        self._retention = int(retention_seconds * 1_000_000)
        self._persistence = persistence
        if persistence is not None:
            for key, doc in persistence.load():
                self.database(key).load(doc)

    def database(self, key: str) -> Database:
        db = self._databases.get(key)
        if db is None:
            with self._lock:
                db = self._databases.setdefault(key, Database(key, self._retention, self._persistence))
        return db

    def databases(self) -> Iterable[Database]:
        with self._lock:
            return list(self._databases.values())

    def close(self) -> None:
        if self._persistence is not None:
            self._persistence.close()
