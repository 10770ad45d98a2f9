"""The service's one entry to rules: allow a read, a query or a commit's writes, or raise PERMISSION_DENIED.

Every check starts with the cheap questions (does this project have rules? is the caller a server client?)
so a request that rules do not concern pays one dictionary lookup and one header scan.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from .. import query, transforms
from ..errors import PermissionDenied
from ..protos import DocumentPb, WritePb
from ..store import Database, to_timestamp, write_target
from . import symbolic
from .auth import Caller, current_caller
from .evaluator import Reads, resource_of
from .matching import ANY_ID, ANY_PREFIX
from .registry import RulesRegistry
from .ruleset import Decision, Ruleset
from .values import Timestamp, path_of_name

DENIED = "Missing or insufficient permissions."  # production's message for every rules denial
METADATA_DENIED = "Metadata operations require admin authentication."  # the official emulator's
SINGLE_DOCUMENT_READS, MULTI_DOCUMENT_READS = 10, 20  # production's caps on get()/exists() per request


class RulesGate:
    def __init__(self, registry: RulesRegistry | None = None, log: TextIO = sys.stderr):
        self.registry = registry or RulesRegistry()
        self.log = log

    def _applies(self, db: Database) -> tuple[Ruleset, Caller] | None:
        """The rules and caller to check, or None when nothing is to be checked."""
        ruleset = self.registry.for_project(db.key.split("/")[1])
        if ruleset is None:
            return None
        caller = current_caller()
        if caller.admin:
            return None
        return ruleset, caller

    def _reads(self, db: Database, count: int) -> Reads:
        project, database = db.key.split("/")[1], db.key.split("/")[3]
        limit = SINGLE_DOCUMENT_READS if count <= 1 else MULTI_DOCUMENT_READS
        return Reads(project, database, before=db.get, limit=limit)

    # -- reads --------------------------------------------------------------------------------------------

    def authorize_reads(self, db: Database, names: Sequence[str], read: Callable[[str], DocumentPb | None]) -> None:
        """`get` on each document; `read(name)` gives the version the request sees (None: missing)."""
        applies = self._applies(db)
        if applies is None:
            return
        ruleset, caller = applies
        reads = self._reads(db, len(names))
        now = _now()
        for name in names:
            doc = read(name)
            path = path_of_name(name)
            request = {"auth": caller.auth, "method": "get", "path": path, "time": now}
            resource = resource_of(doc, path) if doc is not None else None
            decision = ruleset.decide("get", path.segments, {"request": request, "resource": resource}, reads)
            if not decision.allowed:
                self._deny("get", name, caller, decision)

    def authorize_query(self, db: Database, parent: str, structured) -> None:
        """`list` for a query (or an aggregation's query): refused unless its filters prove the rule."""
        applies = self._applies(db)
        if applies is None:
            return
        query.validate_query(structured)  # a malformed query answers INVALID_ARGUMENT, rules or not
        selector = structured.from_[0]
        parent_items = path_of_name(parent).segments
        if selector.all_descendants:
            items = (*parent_items, ANY_PREFIX, selector.collection_id or ANY_ID, ANY_ID)
        else:
            items = (*parent_items, selector.collection_id, ANY_ID)
        limit = structured.limit.value if structured.HasField("limit") else None
        self._authorize_list(db, applies, items, symbolic.branches(structured), limit, structured.offset,
                             f"{parent}/{selector.collection_id or '*'}")

    def authorize_list_documents(self, db: Database, parent: str, collection_id: str, show_missing: bool,
                                 page_size: int) -> None:
        """ListDocuments is a query without filters; with show_missing it is a metadata operation."""
        applies = self._applies(db)
        if applies is None:
            return
        if show_missing:
            raise PermissionDenied(METADATA_DENIED)
        items = (*path_of_name(parent).segments, collection_id, ANY_ID)
        self._authorize_list(db, applies, items, [symbolic.Branch()], page_size or None, 0,
                             f"{parent}/{collection_id}")

    def authorize_admin_only(self, db: Database) -> None:
        """Operations that only server clients may call (ListCollectionIds), as the official emulator."""
        if self._applies(db) is not None:
            raise PermissionDenied(METADATA_DENIED)

    def _authorize_list(self, db: Database, applies: tuple[Ruleset, Caller], items: tuple,
                        branches: list[symbolic.Branch], limit: int | None, offset: int, what: str) -> None:
        ruleset, caller = applies
        request = {"auth": caller.auth, "method": "list", "time": _now(),
                   "query": {"limit": limit, "offset": offset}}
        decision = ruleset.decide_query(items, branches, {"request": request}, self._reads(db, 1))
        if not decision.allowed:
            self._deny("list", what, caller, decision)

    # -- writes --------------------------------------------------------------------------------------------

    def authorize_writes(self, db: Database, writes: Sequence[WritePb]) -> None:
        """create, update or delete for each write, decided from the stored document (the caller holds the
        exclusive locks, so it cannot change before the commit). `request.resource` is the document as the
        write leaves it; `getAfter()` sees every write of the request applied."""
        applies = self._applies(db)
        if applies is None:
            return
        ruleset, caller = applies
        now = _now()
        request_ts = to_timestamp(now.nanos // 1000)  # server timestamps in request.resource are request.time
        pending: dict[str, DocumentPb | None] = {}
        steps = []
        for w in writes:
            name = write_target(w)
            before = pending[name] if name in pending else db.get(name)
            # An invalid write raises the same error here as in the commit, which it could not pass anyway.
            fields, _ = transforms.apply_write(before.fields if before is not None else None, w, request_ts)
            after = DocumentPb(name=name, fields=fields) if fields is not None else None
            pending[name] = after
            steps.append((name, before, after, w.WhichOneof("operation") == "delete"))
        reads = self._reads(db, len(writes))
        reads.after = pending
        for name, before, after, is_delete in steps:
            method = "delete" if is_delete else ("update" if before is not None else "create")
            path = path_of_name(name)
            request = {"auth": caller.auth, "method": method, "path": path, "time": now,
                       "resource": resource_of(after, path) if after is not None else None}
            resource = resource_of(before, path) if before is not None else None
            decision = ruleset.decide(method, path.segments, {"request": request, "resource": resource}, reads)
            if not decision.allowed:
                self._deny(method, name, caller, decision)

    def _deny(self, method: str, what: str, caller: Caller, decision: Decision) -> None:
        print(f"firestore rules: denied {method} of {what} to {caller.describe()}: {decision.explain()}",
              file=self.log, flush=True)
        raise PermissionDenied(DENIED)


def _now() -> Timestamp:
    """request.time, at the microsecond precision of Firestore timestamps (so a server timestamp written by
    the request equals it)."""
    return Timestamp(time.time_ns() // 1000 * 1000)


__all__ = ["RulesGate", "DENIED", "METADATA_DENIED"]
