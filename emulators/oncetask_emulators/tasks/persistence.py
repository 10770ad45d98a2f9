"""SQLite (WAL) persistence of queues, pending tasks and tombstones, so a `--data-dir` survives kill -9.

Every change is committed before the RPC that made it returns. synchronous=NORMAL in WAL mode loses nothing on a
process crash (only on a power cut), which is the crash this emulator is asked to survive.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    name TEXT PRIMARY KEY, queue TEXT NOT NULL, data BLOB NOT NULL, due REAL NOT NULL, named INTEGER NOT NULL,
    first_attempt REAL, previous_response INTEGER, retry_reason TEXT, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tombstones (name TEXT PRIMARY KEY, expires REAL NOT NULL);
"""


@dataclass
class TaskRow:
    name: str
    queue: str
    data: bytes
    due: float
    named: bool
    first_attempt: float | None
    previous_response: int | None
    retry_reason: str | None
    seq: int


class SqlitePersistence:
    """Write-through storage; the caller (the store) serialises access under its own lock."""

    def __init__(self, data_dir: str):
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(Path(data_dir, "tasks.sqlite3")), check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def save_queue(self, name: str, data: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO queues VALUES (?, ?)", (name, data))

    def delete_queue(self, name: str) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM queues WHERE name = ?", (name,))
            self._db.execute("DELETE FROM tasks WHERE queue = ?", (name,))

    def save_task(self, row: TaskRow) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.name, row.queue, row.data, row.due, int(row.named), row.first_attempt, row.previous_response,
             row.retry_reason, row.seq),
        )

    def delete_task(self, name: str, tombstone_until: float | None) -> None:
        """Remove a task and, in the same transaction, record its tombstone (a crash never loses one of the two)."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM tasks WHERE name = ?", (name,))
            if tombstone_until is not None:
                self._db.execute("INSERT OR REPLACE INTO tombstones VALUES (?, ?)", (name, tombstone_until))

    def purge_tombstones(self, now: float) -> None:
        self._db.execute("DELETE FROM tombstones WHERE expires <= ?", (now,))

    def load(self) -> tuple[list[tuple[str, bytes]], list[TaskRow], list[tuple[str, float]]]:
        queues = list(self._db.execute("SELECT name, data FROM queues"))
        tasks = [TaskRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8])
                 for r in self._db.execute("SELECT * FROM tasks ORDER BY seq")]
        tombstones = list(self._db.execute("SELECT name, expires FROM tombstones"))
        return queues, tasks, tombstones

    def close(self) -> None:
        self._db.close()
