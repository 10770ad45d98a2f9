"""Every error the processor knows, and the one classifier that decides whether an error is worth a retry.

Stages raise `PermanentError` or `RetryableError` for what they understand; anything else is classified by
`classify()`: gRPC/HTTP status codes from Google APIs, timeouts and connection errors are retryable, validation
errors and other 4xx are permanent, and an unknown exception is permanent (a bug does not heal by retrying).
"""

from __future__ import annotations

import concurrent.futures
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pydantic
import requests
from google.api_core import exceptions as gexc

# gRPC status names that a retry can fix.
RETRYABLE_GRPC = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL"})
# HTTP statuses that a retry can fix.
RETRYABLE_HTTP = frozenset({408, 429, 500, 502, 503, 504})


class OncetaskError(Exception):
    """Base of the product's own errors: a stable `code` and a human `message`."""

    code: str = "ERROR"
    retryable: bool = False

    def __init__(self, code: str | None = None, message: str = "") -> None:
        self.code = code or self.code
        self.message = message or self.code
        super().__init__(f"{self.code}: {self.message}")


class PermanentError(OncetaskError):
    """Bad input or a state no retry can change: the job fails at once."""

    code = "PERMANENT"
    retryable = False


class RetryableError(OncetaskError):
    """A transient problem: the job is retried with the queue's backoff."""

    code = "TRANSIENT"
    retryable = True


class StageTimeout(RetryableError):
    """A stage ran past its deadline: its lease is not renewed any more, and the attempt ends (retried or failed)."""

    code = "STAGE_TIMEOUT"


class LeaseLost(OncetaskError):
    """This worker no longer holds the job's lease (it lapsed, or another worker took it): stop, write nothing."""

    code = "LEASE_LOST"


class Cancelled(OncetaskError):
    """The job was cancelled while this worker ran it: stop, clean up the current stage."""

    code = "CANCELLED"


class DefinitionError(ValueError):
    """A job definition that cannot work (no stages, a duplicate name, a payload that is not a pydantic model...):
    raised where it is written or when the app starts, naming the job type and the problem."""


class IllegalTransition(OncetaskError):
    """A state change the transition table does not allow (a bug or a race lost): never silently overwritten."""

    code = "ILLEGAL_TRANSITION"


class InvalidRequest(OncetaskError):
    """Bad input from a caller: names the field at fault."""

    code = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(self.code, message)
        self.field = field


class QuotaExceeded(OncetaskError):
    """The caller has as many active jobs as its quota allows: 429, nothing written."""

    code = "QUOTA_EXCEEDED"


class JobNotFound(OncetaskError):
    code = "NOT_FOUND"


class Conflict(OncetaskError):
    """The request contradicts what is stored (same idempotency key, different payload; wrong state)."""

    code = "CONFLICT"


@dataclass(frozen=True)
class ClassifiedError:
    """What the job's error history records about one failure."""

    code: str
    message: str
    retryable: bool
    stage: str | None = None
    attempt: int = 0
    at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message[:2000],
            "retryable": self.retryable,
            "stage": self.stage,
            "attempt": self.attempt,
            "at": self.at or datetime.now(timezone.utc),
        }


def classify(exc: BaseException, stage: str | None = None, attempt: int = 0) -> ClassifiedError:
    """Decide code and retryability of any exception (pure: looks only at the exception)."""
    code, retryable = _code_and_retryable(exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return ClassifiedError(code, str(message), retryable, stage, attempt, datetime.now(timezone.utc))


def is_retryable(exc: BaseException) -> bool:
    return _code_and_retryable(exc)[1]


def _code_and_retryable(exc: BaseException) -> tuple[str, bool]:
    if isinstance(exc, OncetaskError):
        return exc.code, exc.retryable
    if isinstance(exc, pydantic.ValidationError):
        return "INVALID_ARGUMENT", False
    if isinstance(exc, gexc.GoogleAPICallError):
        grpc_name = _grpc_name(exc)
        if grpc_name:
            return grpc_name, grpc_name in RETRYABLE_GRPC
        status = exc.code if isinstance(exc.code, int) else None
        if status is not None:
            return f"HTTP_{status}", status in RETRYABLE_HTTP
        return type(exc).__name__.upper(), False
    if isinstance(exc, gexc.RetryError):
        return "DEADLINE_EXCEEDED", True
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        return f"HTTP_{status}", status in RETRYABLE_HTTP
    if isinstance(exc, (TimeoutError, socket.timeout, concurrent.futures.TimeoutError, requests.Timeout)):
        return "TIMEOUT", True
    if isinstance(exc, (ConnectionError, requests.ConnectionError)):
        return "CONNECTION", True
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return "INVALID_ARGUMENT", False
    return "INTERNAL_ERROR", False


def _grpc_name(exc: gexc.GoogleAPICallError) -> str | None:
    status = getattr(exc, "grpc_status_code", None)
    if status is not None:
        return str(status.name)
    # HTTP-only clients (Storage) have no gRPC code; map the HTTP status to its canonical name when known.
    mapping = {409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE",
               504: "DEADLINE_EXCEEDED", 408: "DEADLINE_EXCEEDED"}
    return mapping.get(exc.code) if isinstance(exc.code, int) and exc.code in mapping else None
