"""Structured logs: one JSON object per line on stdout, in the shape Cloud Logging indexes without parsing.

Context (job, task, attempt, stage, trace) is kept in contextvars, so every line of a request carries it
without being passed around; `with bound(...)` adds fields for the duration of a block. A thread started for a
request (the lease's heartbeat) runs in a copy of the request's context (`in_context`), so its lines carry it too.

A line with a traceback (`exc_info`, or a `stack_trace` field) is also an Error Reporting event: it carries the
`@type` of a ReportedErrorEvent, a `serviceContext` and the traceback in `stack_trace`, the field Error Reporting
reads first, so it groups the errors by their stack.

Traces: a job keeps the trace of the request that submitted it (`trace_id`); its tasks carry it to every delivery
in the `X-Cloud-Trace-Context` and W3C `traceparent` headers, and every line about the job carries it in
`logging.googleapis.com/trace`, so Cloud Logging and Cloud Trace show one job as one trace.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import secrets
import sys
from enum import StrEnum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("oncetask_log_context", default={})

SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}
TRACE_KEY = "logging.googleapis.com/trace"
SPAN_KEY = "logging.googleapis.com/spanId"
ERROR_EVENT_TYPE = "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"
_service_context: dict[str, str] = {"service": "oncetask"}

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d+))?(?:;o=([01]))?$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class Event(StrEnum):
    """What a line reports, in its `event` field: the vocabulary the log-based metrics and alerts of the Terraform
    module (monitoring.tf) count. A name here is a promise to them: change one, change both."""

    JOB_SUBMITTED = "job.submitted"
    JOB_COMPLETED = "job.completed"  # with duration_seconds (first start to completion) and job_type
    JOB_FAILED = "job.failed"  # ended failed for good: its dead letter is written in the same commit
    JOB_CANCELLED = "job.cancelled"
    STAGE_FAILED = "stage.failed"  # any recorded failure of an attempt (retried or not), with code and job_type
    STAGE_TIMED_OUT = "stage.timed_out"  # a stage ran past its deadline (hung)
    LEASE_LAPSED = "lease.lapsed"  # the cleanup found a running job whose worker stopped renewing: stuck
    TASK_LOST = "task.lost"  # the cleanup found a waiting job whose task is gone: stuck
    QUEUE_STATS = "queue.stats"  # the cleanup's reading of one queue: depth, oldest task age


# Traces ----------------------------------------------------------------------------------------------------------

def trace_id_from_headers(headers: Any) -> str | None:
    """The 32-hex trace ID of a request: `traceparent` (W3C) first, then `X-Cloud-Trace-Context: TRACE/SPAN;o=1`;
    None if neither is present and well formed (an all-zero ID is invalid in both)."""
    parent = (headers.get("traceparent") or "").strip().lower()
    match = _TRACEPARENT.match(parent)
    if match and match.group(1) != "ff" and set(match.group(2)) != {"0"}:
        return match.group(2)
    match = _CLOUD_TRACE.match((headers.get("X-Cloud-Trace-Context") or "").strip())
    if match and set(match.group(1)) != {"0"}:
        return match.group(1).lower()
    return None


def new_trace_id() -> str:
    return secrets.token_hex(16)


def is_trace_id(value: object) -> bool:
    return isinstance(value, str) and bool(_TRACE_ID.match(value)) and set(value) != {"0"}


def trace_resource(trace_id: str | None, project_id: str) -> str | None:
    """`projects/P/traces/TRACE_ID`, as Cloud Logging links a line to its trace."""
    return f"projects/{project_id}/traces/{trace_id}" if trace_id else None


def trace_from_header(header: str | None, project_id: str) -> str | None:
    """`X-Cloud-Trace-Context: TRACE_ID/SPAN;o=1` -> `projects/P/traces/TRACE_ID` (None if absent or malformed)."""
    return trace_resource(trace_id_from_headers({"X-Cloud-Trace-Context": header or ""}), project_id)


def trace_headers(trace_id: str, span_seed: str) -> dict[str, str]:
    """The headers that carry a job's trace to a delivery: a span of its own per task (derived from the task's
    name, so a task sent twice names the same span), sampled."""
    span = int.from_bytes(hashlib.sha256(span_seed.encode()).digest()[:8], "big") or 1
    return {"X-Cloud-Trace-Context": f"{trace_id}/{span};o=1", "traceparent": f"00-{trace_id}-{span:016x}-01"}


def current_trace_id() -> str | None:
    """The trace ID bound to this context (the request's, or the job's), if any."""
    trace = _context.get().get("trace")
    return trace.rsplit("/", 1)[-1] if isinstance(trace, str) and trace else None


# Context ---------------------------------------------------------------------------------------------------------

@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block (None values are left out)."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def in_context(target: Callable[[], None]) -> Callable[[], None]:
    """`target` made to run in a copy of the caller's log context: for a thread that works for this request."""
    context = contextvars.copy_context()
    return lambda: context.run(target)


# Formatting ------------------------------------------------------------------------------------------------------

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
        if record.exc_info and not entry.get("stack_trace"):
            entry["stack_trace"] = self.formatException(record.exc_info)
        if entry.get("stack_trace"):
            # An Error Reporting event: it reads `stack_trace` first, and groups by it.
            entry["@type"] = ERROR_EVENT_TYPE
            entry["serviceContext"] = dict(_service_context)
        return json.dumps(entry, default=str)


def configure(level: int = logging.INFO, service: str | None = None, version: str | None = None) -> None:
    """Route the `oncetask` loggers to stdout as JSON lines (idempotent); name the service Error Reporting shows
    (on Cloud Run: K_SERVICE and K_REVISION)."""
    if service:
        _service_context["service"] = service
    if version:
        _service_context["version"] = version
    logger = logging.getLogger("oncetask")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)  # its lock keeps the lines of several threads whole
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"oncetask.{name}")


def log(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log with extra structured fields: `log(LOG, logging.INFO, "stage done", stage="work")`."""
    logger.log(level, message, extra={"fields": fields})
