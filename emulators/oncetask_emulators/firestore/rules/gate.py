"""The service's one entry to rules: allow a read, a query or a commit's writes, or raise PERMISSION_DENIED.

Every check starts with the cheap questions (does this project have rules? is the caller a server client?)
so a request that rules do not concern pays one dictionary lookup and one header scan. Only then is the
deciding half (enforce.py, with the evaluator) needed: it is imported on first use, so an emulator started
without rules does not load it (a faster start; see bench/firestore_emulator.py --ready-only).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, TextIO

from ..errors import PermissionDenied
from ..protos import DocumentPb, WritePb
from .auth import Caller, current_caller
from .registry import RulesRegistry

if TYPE_CHECKING:
    from ..store import Database
    from .ruleset import Ruleset

DENIED = "Missing or insufficient permissions."  # production's message for every rules denial
METADATA_DENIED = "Metadata operations require admin authentication."  # the official emulator's


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

    # -- reads --------------------------------------------------------------------------------------------

    def authorize_reads(self, db: Database, names: Sequence[str], read: Callable[[str], DocumentPb | None]) -> None:
        """`get` on each document; `read(name)` gives the version the request sees (None: missing)."""
        applies = self._applies(db)
        if applies is not None:
            _enforce().authorize_reads(*applies, db, names, read, self.log)

    def authorize_query(self, db: Database, parent: str, structured) -> None:
        """`list` for a query (or an aggregation's query): refused unless its filters prove the rule."""
        applies = self._applies(db)
        if applies is not None:
            _enforce().authorize_query(*applies, db, parent, structured, self.log)

    def authorize_list_documents(self, db: Database, parent: str, collection_id: str, show_missing: bool,
                                 page_size: int) -> None:
        """ListDocuments is a query without filters; with show_missing it is a metadata operation."""
        applies = self._applies(db)
        if applies is None:
            return
        if show_missing:
            raise PermissionDenied(METADATA_DENIED)
        _enforce().authorize_list_documents(*applies, db, parent, collection_id, page_size, self.log)

    def authorize_admin_only(self, db: Database) -> None:
        """Operations that only server clients may call (ListCollectionIds), as the official emulator."""
        if self._applies(db) is not None:
            raise PermissionDenied(METADATA_DENIED)

    # -- writes --------------------------------------------------------------------------------------------

    def authorize_writes(self, db: Database, writes: Sequence[WritePb]) -> None:
        """create, update or delete for each write (see enforce.authorize_writes)."""
        applies = self._applies(db)
        if applies is not None:
            _enforce().authorize_writes(*applies, db, writes, self.log)


def _enforce() -> ModuleType:
    from . import enforce  # after the first call, a lookup in sys.modules

    return enforce


__all__ = ["RulesGate", "DENIED", "METADATA_DENIED"]
