"""Per-RPC call counters, overall and per database, served at GET /emulator/v1/stats.

The processor and the benchmark count "Firestore calls per job" with them.
"""

from __future__ import annotations

import threading
from collections import Counter


class CallCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total: Counter[str] = Counter()
        self._by_database: dict[str, Counter[str]] = {}

    def count(self, method: str, database: str | None) -> None:
        with self._lock:
            self._total[method] += 1
            if database:
                self._by_database.setdefault(database, Counter())[method] += 1

    def snapshot(self, database: str | None = None) -> dict:
        """{"total": {method: n}, "databases": {key: {method: n}}}, or one database's counters."""
        with self._lock:
            if database is not None:
                return {"database": database, "calls": dict(self._by_database.get(database, {}))}
            return {
                "total": dict(self._total),
                "databases": {key: dict(counts) for key, counts in self._by_database.items()},
            }

    def reset(self, database: str | None = None) -> None:
        with self._lock:
            if database is None:
                self._total.clear()
                self._by_database.clear()
            else:
                self._by_database.pop(database, None)
