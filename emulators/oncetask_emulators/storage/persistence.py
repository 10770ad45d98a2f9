"""SQLite (WAL) persistence for `--data-dir`: buckets, every object version with its bytes, upload sessions.

Each change the store makes is one SQLite transaction, committed before the request that made it is answered.
WAL with synchronous=NORMAL loses nothing when the process is killed (`kill -9`), only on a power cut, which is
the crash this emulator is asked to survive. The store calls in under its own lock, so one connection serves.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .model import Bucket, StoredObject
from .uploads import Session

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, name TEXT NOT NULL, generation INTEGER NOT NULL,
    record TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (bucket, name, generation));
CREATE TABLE IF NOT EXISTS uploads (upload_id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS upload_chunks (
    upload_id TEXT NOT NULL, offset INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (upload_id, offset));
"""


class SqlitePersistence:
    def __init__(self, data_dir: str) -> None:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(Path(data_dir, "storage.sqlite3")), check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # Loading --------------------------------------------------------------------------------------------------

    def last_generation(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_generation'").fetchone()
        return int(row[0]) if row else 0

    def buckets(self) -> list[Bucket]:
        return [Bucket.from_record(json.loads(r)) for (r,) in self._db.execute("SELECT record FROM buckets")]

    def objects(self) -> Iterator[StoredObject]:
        for record, data in self._db.execute("SELECT record, data FROM objects ORDER BY bucket, name, generation"):
            yield StoredObject.from_record(json.loads(record), bytes(data))

    def sessions(self) -> list[Session]:
        sessions = []
        for upload_id, record in self._db.execute("SELECT upload_id, record FROM uploads").fetchall():
            chunks = self._db.execute("SELECT data FROM upload_chunks WHERE upload_id = ? ORDER BY offset",
                                      (upload_id,))
            sessions.append(Session.from_record(json.loads(record), b"".join(bytes(c) for (c,) in chunks)))
        return sessions

    # Writing (each method is one transaction) -------------------------------------------------------------------

    def save_bucket(self, bucket: Bucket) -> None:
        self._db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?)", (bucket.name, json.dumps(bucket.record())))

    def delete_bucket(self, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM buckets WHERE name = ?", (name,))
            db.execute("DELETE FROM objects WHERE bucket = ?", (name,))

    def write_objects(self, put: list[StoredObject], put_records: list[StoredObject], delete: list[StoredObject],
                      last_generation: int, finished_session: Session | None = None) -> None:
        """In one transaction: new versions (`put`, with their bytes), changed records of existing versions
        (`put_records`: metadata only, the bytes stay), versions gone (`delete`), the generation clock, and the
        resumable session that made the new version, if any."""
        with self.transaction() as db:
            for obj in delete:
                db.execute("DELETE FROM objects WHERE bucket = ? AND name = ? AND generation = ?",
                           (obj.bucket, obj.name, obj.generation))
            for obj in put:
                db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
                           (obj.bucket, obj.name, obj.generation, json.dumps(obj.record()), obj.data))
            for obj in put_records:
                db.execute("UPDATE objects SET record = ? WHERE bucket = ? AND name = ? AND generation = ?",
                           (json.dumps(obj.record()), obj.bucket, obj.name, obj.generation))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_generation', ?)", (str(last_generation),))
            if finished_session is not None:
                self._finish_session(db, finished_session)

    def save_session(self, session: Session) -> None:
        self._db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?)",
                         (session.upload_id, json.dumps(session.record())))

    def append_chunk(self, session: Session, offset: int, data: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO upload_chunks VALUES (?, ?, ?)", (session.upload_id, offset, data))

    def finish_session(self, session: Session) -> None:
        with self.transaction() as db:
            self._finish_session(db, session)

    @staticmethod
    def _finish_session(db: sqlite3.Connection, session: Session) -> None:
        """A finished or failed session keeps its record (to answer again) but not its bytes."""
        db.execute("INSERT OR REPLACE INTO uploads VALUES (?, ?)", (session.upload_id, json.dumps(session.record())))
        db.execute("DELETE FROM upload_chunks WHERE upload_id = ?", (session.upload_id,))

    def delete_session(self, upload_id: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload_id,))
            db.execute("DELETE FROM upload_chunks WHERE upload_id = ?", (upload_id,))

    def close(self) -> None:
        self._db.close()
