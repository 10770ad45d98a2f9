"""The local stack's output on disk: every line of every part, so that `oncetask logs JOB_ID` can show one job's lines
and `oncetask cleanup` the counts of the run it triggered, after the fact and from another terminal.

`oncetask dev` writes `.oncetask/logs/stack.log` beside its state file (`stackfile.py`), one line per line a part
wrote: `PART<TAB>LINE`. It starts empty with each run and keeps at most about `max_bytes`: past that, the file
becomes `stack.log.1` (replacing the previous one) and a new one starts, so a long session never fills the disk.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

MAX_BYTES = 32 * 1024 * 1024


def default_path(state_file: Path) -> Path:
    return state_file.parent / "logs" / "stack.log"


class LogFile:
    """Appends `(part, line)` pairs from the stack's reader threads (one lock: lines never interleave)."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._rotated().unlink(missing_ok=True)  # a new run: the last run's lines are not this one's
        self._file: TextIO | None = path.open("w", encoding="utf-8")
        self._size = 0

    def write(self, part: str, line: str) -> None:
        record = f"{part}\t{line.rstrip(chr(10))}\n"
        with self._lock:
            if self._file is None:
                return
            self._file.write(record)
            self._file.flush()  # a reader in another process sees each line as it is written
            self._size += len(record)
            if self._size > self.max_bytes:
                self._file.close()
                self.path.replace(self._rotated())
                self._file = self.path.open("w", encoding="utf-8")
                self._size = 0

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _rotated(self) -> Path:
        return self.path.with_name(self.path.name + ".1")


def read(path: Path) -> Iterator[tuple[str, str]]:
    """Every `(part, line)` written so far, oldest first (the rotated file's, then the current one's)."""
    for source in (path.with_name(path.name + ".1"), path):
        try:
            with source.open(encoding="utf-8", errors="replace") as handle:
                for record in handle:
                    yield _split(record)
        except FileNotFoundError:
            continue


def follow(path: Path, stop: threading.Event | None = None, poll: float = 0.2) -> Iterator[tuple[str, str]]:
    """Every line written so far, then each new one as it is written, until `stop` is set (or forever)."""
    yield from read(path)
    handle = path.open(encoding="utf-8", errors="replace")
    handle.seek(0, 2)
    inode = path.stat().st_ino
    try:
        while stop is None or not stop.is_set():
            record = handle.readline()
            if record:
                yield _split(record)
                continue
            try:
                if path.stat().st_ino != inode:  # rotated: go on with the new file from its start
                    handle.close()
                    handle = path.open(encoding="utf-8", errors="replace")
                    inode = path.stat().st_ino
                    continue
            except FileNotFoundError:
                pass
            time.sleep(poll)
    finally:
        handle.close()


def in_time_order(lines: Iterator[tuple[str, str]]) -> list[tuple[str, str]]:
    """The lines ordered by the time the functions' JSON lines carry (the parts write to the file through their own
    pipes, so an API line can land after the handler's line it caused); a line without a time keeps its place
    after the line before it."""
    keyed = []
    last = ""
    for position, (part, line) in enumerate(lines):
        entry = json_fields(line)
        stamp = entry.get("time") if entry and isinstance(entry.get("time"), str) else None
        last = stamp or last
        keyed.append((last, position, part, line))
    return [(part, line) for _, _, part, line in sorted(keyed)]


def mentions(line: str, needle: str) -> bool:
    """Whether a line is about `needle` (a job ID or a trace ID): in a field of a JSON line, or anywhere in another
    (an emulator's line naming a task)."""
    return needle in line


def json_fields(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _split(record: str) -> tuple[str, str]:
    part, _, line = record.rstrip("\n").partition("\t")
    return part, line


__all__ = ["LogFile", "default_path", "follow", "in_time_order", "json_fields", "mentions", "read"]
