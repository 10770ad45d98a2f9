"""Durable storage for `--data-dir`: the latest version of every document in SQLite (WAL mode).

Only the newest committed version of each document is kept on disk; older versions (for reads at a past
`read_time`) live in memory and start afresh after a restart, which is enough for a development emulator.
WAL with synchronous=NORMAL survives a process crash (`kill -9`): a commit is in the OS once `commit()` returns.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping

from .protos import DocumentPb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    database TEXT NOT NULL,  -- projects/{p}/databases/{d}
    name TEXT NOT NULL,      -- full document name
    data BLOB NOT NULL,      -- serialized google.firestore.v1.Document
    PRIMARY KEY (database, name)
) WITHOUT ROWID;
"""


class SqlitePersistence:
    """Writes each commit in one SQLite transaction; thread-safe (one connection behind a lock)."""

    def __init__(self, data_dir: str):
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "firestore.sqlite3")
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def load(self) -> Iterator[tuple[str, DocumentPb]]:
        """Every stored document as (database, Document)."""
        with self._lock:
            rows = self._conn.execute("SELECT database, data FROM documents").fetchall()
        for database, data in rows:
            yield database, DocumentPb.FromString(data)

    def save(self, database: str, changes: Mapping[str, DocumentPb | None]) -> None:
        """Apply one commit's changes (None deletes) atomically."""
        upserts = [(database, name, doc.SerializeToString()) for name, doc in changes.items() if doc is not None]
        deletes = [(database, name) for name, doc in changes.items() if doc is None]
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                if upserts:
                    self._conn.executemany("INSERT OR REPLACE INTO documents VALUES (?, ?, ?)", upserts)
                if deletes:
                    self._conn.executemany("DELETE FROM documents WHERE database = ? AND name = ?", deletes)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def wipe(self, database: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM documents WHERE database = ?", (database,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
