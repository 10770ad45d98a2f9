"""Structured logs: one JSON object per line on stdout, in the shape Cloud Logging indexes without parsing.

Context (job, task, attempt, stage, trace) is kept in contextvars, so every line of a request carries it
without being passed around; `with bound(...)` adds fields for the duration of a block.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("oncetask_log_context", default={})

SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}
TRACE_KEY = "logging.googleapis.com/trace"


def trace_from_header(header: str | None, project_id: str) -> str | None:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1` -> `projects/P/traces/TRACE_ID` (None if absent or malformed)."""
    if not header:
        return None
    trace_id = header.split("/", 1)[0].strip()
    if not trace_id or not all(c in "0123456789abcdefABCDEF" for c in trace_id):
        return None
    return f"projects/{project_id}/traces/{trace_id}"


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block (None values are left out)."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": SEVERITY.get(record.levelname, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "logger": record.name,
        }
        entry.update(_context.get())
        entry.update(getattr(record, "fields", {}) or {})
        if "trace" in entry:  # the key Cloud Logging reads to link a line to its trace
            entry[TRACE_KEY] = entry.pop("trace")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: int = logging.INFO) -> None:
    """Route the `oncetask` loggers to stdout as JSON lines (idempotent)."""
    logger = logging.getLogger("oncetask")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"oncetask.{name}")


def log(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log with extra structured fields: `log(LOG, logging.INFO, "stage done", stage="work")`."""
    logger.log(level, message, extra={"fields": fields})
