"""Security rules for Listen: which targets an end user's stream may hold, checked as the other reads are.

A stream outlives any one request and does not pass through the service's guard, so the caller's metadata is
kept with the stream and set as the rules' `CALL_METADATA` around each check (on the worker thread, never left
set). What is checked:

- a query target is `list`, proved from the query when it is added: rules are not filters, so every document
  the query can ever return is allowed and its changes are not checked again (as production, where a listener
  whose query proves the rule survives its documents' deletion);
- a documents target is `get` of each of its documents at the snapshot it is added at, and again for every
  new version of one of them (a deletion included, as `resource == null`), since a get rule may depend on
  the document's content;
- a target the rules deny is removed with PERMISSION_DENIED as its cause; the stream and its other targets go
  on. A bad bearer token fails the whole stream with UNAUTHENTICATED, as it fails any other call.
- rules replaced while a stream is open are applied to its targets at the stream's next wake-up (a commit that
  concerns it, a request, the heartbeat), as production applies new rules to open listeners within minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..protos import DocumentPb
from ..rules.auth import CALL_METADATA
from ..rules.gate import RulesGate
from ..store import Database
from .targets import WatchTarget

Read = Callable[[str], DocumentPb | None]


class ListenAccess:
    def __init__(self, gate: RulesGate, metadata: Sequence[tuple[str, str]] | None, db: Database):
        self._gate = gate
        self._metadata = metadata
        self._db = db
        self._project = db.key.split("/")[1]
        self._ruleset = gate.registry.for_project(self._project)

    def check(self, watch: WatchTarget, read: Read) -> None:
        """May the caller hold `watch`, whose documents are `read(name)` at the stream's snapshot?
        PermissionDenied if not (Unauthenticated for a bad token)."""
        if watch.is_query:
            self._with_caller(lambda: self._gate.authorize_query(self._db, watch.parent, watch.structured))
        else:
            self._with_caller(lambda: self._gate.authorize_reads(self._db, watch.names, read))

    def check_versions(self, watch: WatchTarget, changes: Mapping[str, DocumentPb | None]) -> None:
        """May the caller see the versions a commit wrote (`changes`: name -> version, None if deleted) of the
        documents of `watch`?"""
        if watch.is_query:
            return  # proved for every document the query can return when it was added
        names = [name for name in watch.names if name in changes]
        if names:
            self._with_caller(lambda: self._gate.authorize_reads(self._db, names, changes.__getitem__))

    def rules_replaced(self) -> bool:
        """Have the project's rules been replaced since the last call (or since the stream began)?"""
        current = self._gate.registry.for_project(self._project)
        replaced, self._ruleset = current is not self._ruleset, current
        return replaced

    def _with_caller(self, check: Callable[[], None]) -> None:
        token = CALL_METADATA.set(self._metadata)
        try:
            check()
        finally:
            CALL_METADATA.reset(token)
