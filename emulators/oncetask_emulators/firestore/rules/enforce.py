"""The deciding half of the rules gate: the rules' requests for a read, a query or a commit's writes, decided,
PERMISSION_DENIED when denied. gate.py imports it on first use, which is only once some project has rules
(loading them has imported the evaluator already): an emulator without rules never loads it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TextIO

from .. import query, transforms
from ..errors import PermissionDenied
from ..protos import DocumentPb, WritePb
from ..store import Database, to_timestamp, write_target
from . import symbolic
from .auth import Caller
from .evaluator import Reads, resource_of
from .gate import DENIED
from .matching import ANY_ID, ANY_PREFIX
from .ruleset import Decision, Ruleset
from .values import Timestamp, path_of_name

SINGLE_DOCUMENT_READS, MULTI_DOCUMENT_READS = 10, 20  # production's caps on get()/exists() per request


# -- reads --------------------------------------------------------------------------------------------------

def authorize_reads(ruleset: Ruleset, caller: Caller, db: Database, names: Sequence[str],
                    read: Callable[[str], DocumentPb | None], log: TextIO) -> None:
    """`get` on each document; `read(name)` gives the version the request sees (None: missing)."""
    reads = _reads(db, len(names))
    now = _now()
    for name in names:
        doc = read(name)
        path = path_of_name(name)
        request = {"auth": caller.auth, "method": "get", "path": path, "time": now}
        resource = resource_of(doc, path) if doc is not None else None
        decision = ruleset.decide("get", path.segments, {"request": request, "resource": resource}, reads)
        if not decision.allowed:
            _deny("get", name, caller, decision, log)


def authorize_query(ruleset: Ruleset, caller: Caller, db: Database, parent: str, structured, log: TextIO) -> None:
    """`list` for a query (or an aggregation's query): refused unless its filters prove the rule."""
    query.validate_query(structured)  # a malformed query answers INVALID_ARGUMENT, rules or not
    selector = structured.from_[0]
    parent_items = path_of_name(parent).segments
    if selector.all_descendants:
        items = (*parent_items, ANY_PREFIX, selector.collection_id or ANY_ID, ANY_ID)
    else:
        items = (*parent_items, selector.collection_id, ANY_ID)
    limit = structured.limit.value if structured.HasField("limit") else None
    _authorize_list(ruleset, caller, db, items, symbolic.branches(structured), limit, structured.offset,
                    f"{parent}/{selector.collection_id or '*'}", log)


def authorize_list_documents(ruleset: Ruleset, caller: Caller, db: Database, parent: str, collection_id: str,
                             page_size: int, log: TextIO) -> None:
    """ListDocuments is a query without filters."""
    items = (*path_of_name(parent).segments, collection_id, ANY_ID)
    _authorize_list(ruleset, caller, db, items, [symbolic.Branch()], page_size or None, 0,
                    f"{parent}/{collection_id}", log)


def _authorize_list(ruleset: Ruleset, caller: Caller, db: Database, items: tuple, branches: list[symbolic.Branch],
                    limit: int | None, offset: int, what: str, log: TextIO) -> None:
    request = {"auth": caller.auth, "method": "list", "time": _now(), "query": {"limit": limit, "offset": offset}}
    decision = ruleset.decide_query(items, branches, {"request": request}, _reads(db, 1))
    if not decision.allowed:
        _deny("list", what, caller, decision, log)


# -- writes ------------------------------------------------------------------------------------------------

def authorize_writes(ruleset: Ruleset, caller: Caller, db: Database, writes: Sequence[WritePb], log: TextIO) -> None:
    """create, update or delete for each write, decided from the stored document (the caller holds the
    exclusive locks, so it cannot change before the commit). `request.resource` is the document as the
    write leaves it; `getAfter()` sees every write of the request applied."""
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
    reads = _reads(db, len(writes))
    reads.after = pending
    for name, before, after, is_delete in steps:
        method = "delete" if is_delete else ("update" if before is not None else "create")
        path = path_of_name(name)
        request = {"auth": caller.auth, "method": method, "path": path, "time": now,
                   "resource": resource_of(after, path) if after is not None else None}
        resource = resource_of(before, path) if before is not None else None
        decision = ruleset.decide(method, path.segments, {"request": request, "resource": resource}, reads)
        if not decision.allowed:
            _deny(method, name, caller, decision, log)


# -- shared ------------------------------------------------------------------------------------------------

def _reads(db: Database, count: int) -> Reads:
    project, database = db.key.split("/")[1], db.key.split("/")[3]
    limit = SINGLE_DOCUMENT_READS if count <= 1 else MULTI_DOCUMENT_READS
    return Reads(project, database, before=db.get, limit=limit)


def _deny(method: str, what: str, caller: Caller, decision: Decision, log: TextIO) -> None:
    print(f"firestore rules: denied {method} of {what} to {caller.describe()}: {decision.explain()}",
          file=log, flush=True)
    raise PermissionDenied(DENIED)


def _now() -> Timestamp:
    """request.time, at the microsecond precision of Firestore timestamps (so a server timestamp written by
    the request equals it)."""
    return Timestamp(time.time_ns() // 1000 * 1000)
