"""Listen targets: which documents a target holds, and how a commit or a resume changes what the client sees.

A target keeps the client's view of it: the documents the client was told are in it, each with the update_time
it was sent. A commit is compared with that view, not with the previous database state, so what is sent is
exactly what the client lacks: a document enters (DocumentChange with the target in `target_ids`), changes
(the same), or leaves (DocumentDelete if it is gone, DocumentChange with the target in `removed_target_ids` if
it changed and no longer matches, DocumentRemove if it did not change but left a limit's window).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from .. import filters, paths, query
from ..errors import InvalidArgument
from ..protos import DocumentPb, StructuredQueryPb, Timestamp, firestore, write
from ..store import Database
from .feed import Interest

TargetPb = firestore.Target.pb()
ListenResponsePb = firestore.ListenResponse.pb()
DocumentChangePb = write.DocumentChange.pb()


@dataclass(frozen=True)
class Move:
    """One document's change in one target, as the client must learn it."""

    target_id: int
    name: str
    doc: DocumentPb | None  # the target's version of the document now; None: it left the target
    seen: Timestamp | None  # the update_time the client had for it in this target; None: it was not in it


@dataclass
class WatchTarget:
    """A compiled `Target`: a set of document names, or a query under a parent."""

    target_id: int
    names: tuple[str, ...] = ()  # a documents target (duplicates elided, in request order)
    parent: str = ""  # a query target
    structured: StructuredQueryPb | None = None
    view: dict[str, Timestamp] = field(default_factory=dict)  # the client's view: name -> update_time sent

    def __post_init__(self) -> None:
        self._name_set = frozenset(self.names)
        q = self.structured
        if q is not None:
            # A limit or offset (or a nearest-neighbour search) makes membership depend on the other documents:
            # a window, recomputed whole. Without one a document's membership depends on it alone, so a commit
            # is checked document by document.
            self.windowed = q.HasField("limit") or q.offset > 0 or q.HasField("find_nearest")
            self._unwindowed = StructuredQueryPb()
            self._unwindowed.CopyFrom(q)
            self._unwindowed.ClearField("limit")
            self._unwindowed.offset = 0
            selector = q.from_[0]
            self._scope = (selector.collection_id, selector.all_descendants)
            # The per-document test, once per target rather than once per document (RunQuery's own path
            # validates, orders and sorts, which is wasted on one document); cursors take RunQuery's path.
            self._simple = not (q.HasField("start_at") or q.HasField("end_at") or q.HasField("find_nearest"))
            self._order_paths = [path for path, _ in query.normalized_orders(q)]
            self._where = q.where if q.HasField("where") else None
            self._select = [paths.parse_field_path(f.field_path) for f in q.select.fields]

    @property
    def is_query(self) -> bool:
        return self.structured is not None

    def interests(self) -> list[Interest]:
        """What the change feed must deliver to this target's stream: its documents, or its query's scope."""
        if not self.is_query:
            return [("document", name) for name in self.names]
        collection_id, all_descendants = self._scope
        if all_descendants:
            return [("group", self.parent, collection_id)]
        return [("collection", f"{self.parent}/{collection_id}")]

    # -- what the target holds ------------------------------------------------------------------------------

    def results(self, db: Database, at: int) -> dict[str, DocumentPb]:
        """The target's documents as of `at`, in result order, keyed by name (projected for a `select`)."""
        if not self.is_query:
            found = ((name, db.get(name, at)) for name in self.names)
            return {name: doc for name, doc in found if doc is not None}
        assert self.structured is not None
        docs = query.run_query(self.structured, self.parent, _candidates(db, self.parent, self.structured, at))
        return {doc.name: doc for doc in docs}

    def _match(self, doc: DocumentPb) -> DocumentPb | None:
        """The target's version of `doc` if the document matches it regardless of any window, else None."""
        if not self.is_query:
            return doc if doc.name in self._name_set else None
        if not query.in_scope(doc.name, self.parent, *self._scope):
            return None
        if not self._simple:
            found = query.run_query(self._unwindowed, self.parent, [doc])
            return found[0] if found else None
        # As RunQuery: a document lacking an ordered field is not a result; then the filter; then the projection.
        if any(filters.field_value(doc, path) is None for path in self._order_paths):
            return None
        if self._where is not None and not filters.matches(self._where, doc):
            return None
        return query.project(doc, self._select) if self._select else doc

    # -- what the client must learn -------------------------------------------------------------------------

    def apply(self, db: Database, micros: int, changes: Mapping[str, DocumentPb | None]) -> list[Move]:
        """The moves one commit (at `micros`, writing `changes`) makes in this target; updates the view."""
        if self.is_query and self.windowed:
            # The window moves if a written document matches the query (ignoring the window) now or did just
            # before: even one outside the window (before an offset, say) shifts the others.
            relevant = any(
                (doc is not None and self._match(doc) is not None)
                or ((before := db.get(name, micros - 1)) is not None and self._match(before) is not None)
                for name, doc in changes.items()
            )
            return self.reset_view(self.results(db, micros)) if relevant else []
        moves = []
        for name, doc in changes.items():
            mine = self._match(doc) if doc is not None else None
            seen = self.view.get(name)
            if mine is not None and mine.update_time != seen:
                moves.append(Move(self.target_id, name, mine, seen))
            elif mine is None and seen is not None:
                moves.append(Move(self.target_id, name, None, seen))
        self._record(moves)
        return moves

    def reset_view(self, now: Mapping[str, DocumentPb]) -> list[Move]:
        """The moves from the current view to `now` (the target's full result); updates the view."""
        moves = [
            Move(self.target_id, name, doc, self.view.get(name))
            for name, doc in now.items()
            if self.view.get(name) != doc.update_time
        ]
        moves += [Move(self.target_id, name, None, seen) for name, seen in self.view.items() if name not in now]
        self._record(moves)
        return moves

    def _record(self, moves: Iterable[Move]) -> None:
        for move in moves:
            if move.doc is None:
                self.view.pop(move.name, None)
            else:
                self.view[move.name] = move.doc.update_time


def compile_target(target: TargetPb, db: Database, target_id: int) -> WatchTarget:
    """A WatchTarget for `target`, or InvalidArgument (or the query core's error) naming what is wrong."""
    kind = target.WhichOneof("target_type")
    if kind == "documents":
        names: dict[str, None] = {}
        for name in target.documents.documents:
            _check_document(db, name)
            names.setdefault(name, None)
        if not names:
            raise InvalidArgument("A documents target must name at least one document.")
        return WatchTarget(target_id, names=tuple(names))
    if kind == "query":
        parent = target.query.parent
        if parent != db.root:
            _check_document(db, parent)
        if not target.query.HasField("structured_query"):
            raise InvalidArgument("A query target needs a structured_query.")
        structured = target.query.structured_query
        query.validate_query(structured)
        return WatchTarget(target_id, parent=parent, structured=structured)
    raise InvalidArgument("A target must be a query or a set of documents.")


def _check_document(db: Database, name: str) -> None:
    if not name.startswith(db.root + "/"):
        raise InvalidArgument(f"Document {name!r} is not in database {db.key}.")
    paths.validate_document_name(name)


def _candidates(db: Database, parent: str, structured: StructuredQueryPb, at: int) -> list[DocumentPb]:
    """The documents the query could return (the same narrowing as RunQuery's)."""
    selectors = structured.from_
    if len(selectors) == 1 and not selectors[0].all_descendants and selectors[0].collection_id:
        return db.documents_under(f"{parent}/{selectors[0].collection_id}", at)
    return db.documents_under(parent, at)


def responses(moves: Iterable[Move], current: Callable[[str], DocumentPb | None],
              read_time: Timestamp) -> Iterator[ListenResponsePb]:
    """The ListenResponses that tell the client `moves`, grouped per document (one message for all targets a
    document enters with the same version). `current(name)` is the document now (None: deleted)."""
    by_name: dict[str, list[Move]] = {}
    for move in moves:
        by_name.setdefault(move.name, []).append(move)
    for name, doc_moves in by_name.items():
        left = [m.target_id for m in doc_moves if m.doc is None]
        versions: dict[int, tuple[DocumentPb, list[int]]] = {}  # one message per distinct (projected) version
        for m in doc_moves:
            if m.doc is not None:
                versions.setdefault(id(m.doc), (m.doc, []))[1].append(m.target_id)
        if versions:
            for i, (doc, target_ids) in enumerate(versions.values()):
                change = DocumentChangePb(document=doc, target_ids=target_ids, removed_target_ids=left if i == 0 else [])
                yield ListenResponsePb(document_change=change)
            continue
        now = current(name)
        if now is None:
            yield ListenResponsePb(document_delete=write.DocumentDelete.pb()(
                document=name, removed_target_ids=left, read_time=read_time))
        elif any(m.seen != now.update_time for m in doc_moves):
            yield ListenResponsePb(document_change=DocumentChangePb(document=now, removed_target_ids=left))
        else:
            yield ListenResponsePb(document_remove=write.DocumentRemove.pb()(
                document=name, removed_target_ids=left, read_time=read_time))
