"""Every error the processor knows, and the one classifier that decides whether an error is worth a retry.

Stages raise `PermanentError` or `RetryableError` for what they understand; anything else is classified by
`classify()`: gRPC/HTTP status codes from Google APIs, timeouts and connection errors are retryable; validation
errors (pydantic, a `ValueError` raised on purpose) and other 4xx are bad input, permanent; an exception only a
mistake in the code raises (KeyError, TypeError, AttributeError, NameError, AssertionError...) is a `BUG`,
permanent too, and says so; anything else is permanent (a bug does not heal by retrying).

Every classified error keeps the exception's type and a bounded traceback, so the job's error history (and the
log line in Error Reporting's format, `logs.py`) explains itself.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import socket
import traceback as tb
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

# The code of an error that only a mistake in the code raises: no retry and no other input fixes it.
BUG = "BUG"
# Exceptions that well-formed code does not raise on bad input (that is what ValueError and the payload model are
# for): LookupError covers KeyError and IndexError, NameError covers UnboundLocalError, ImportError
# ModuleNotFoundError. A RecursionError is a RuntimeError, so it is named alone.
PROGRAMMING_ERRORS: tuple[type[BaseException], ...] = (
    LookupError, TypeError, AttributeError, NameError, AssertionError, ZeroDivisionError, NotImplementedError,
    RecursionError, ImportError)
BUG_HINT = "a programming error in the code, not bad input: fix the code, then retry the job"
# A recorded traceback is at most this long (a job keeps up to MAX_ERRORS_KEPT errors in a 1 MiB document);
# the log line carries a longer one.
MAX_TRACEBACK_CHARS = 4000
MAX_LOGGED_TRACEBACK_CHARS = 32_000


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
    """What the job's error history records about one failure: `type` and `traceback` are those of the exception
    (None for a failure no exception raised, e.g. a worker whose lease lapsed)."""

    code: str
    message: str
    retryable: bool
    stage: str | None = None
    attempt: int = 0
    at: datetime | None = None
    type: str | None = None
    traceback: str | None = None

    @property
    def is_bug(self) -> bool:
        return self.code == BUG

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message[:2000],
            "retryable": self.retryable,
            "stage": self.stage,
            "attempt": self.attempt,
            "at": self.at or datetime.now(timezone.utc),
            "type": self.type,
            "traceback": bounded(self.traceback, MAX_TRACEBACK_CHARS),
        }


def classify(exc: BaseException, stage: str | None = None, attempt: int = 0) -> ClassifiedError:
    """Decide code and retryability of any exception, and keep its type and traceback (pure: looks only at the
    exception)."""
    code, retryable = _code_and_retryable(exc)
    detail = str(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    kind = type_name(exc)
    # A bug's own text is often a bare value (`'missing'` for a KeyError): the message names the type and says
    # what it means. Other messages stay as written; `type` tells the exception apart.
    message = f"{kind}: {detail} ({BUG_HINT})" if code == BUG else detail
    return ClassifiedError(code, message, retryable, stage, attempt, datetime.now(timezone.utc), kind,
                           format_traceback(exc))


def type_name(exc: BaseException) -> str:
    """`KeyError` for a builtin, `module.Qualified` for any other exception class."""
    cls = type(exc)
    if cls.__module__ == "builtins" or getattr(builtins, cls.__name__, None) is cls:
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def format_traceback(exc: BaseException, max_chars: int = MAX_LOGGED_TRACEBACK_CHARS) -> str | None:
    """The exception as `traceback.format_exc()` writes it (the form Error Reporting parses), its innermost frames
    kept when it is long; None for an exception that was never raised (no frames to show)."""
    if exc.__traceback__ is None and exc.__cause__ is None and exc.__context__ is None:
        return None
    text = "".join(tb.format_exception(exc))
    if len(text) > max_chars:
        text = "".join(tb.TracebackException.from_exception(exc, limit=-12).format())
    return bounded(text, max_chars)


def bounded(text: str | None, max_chars: int) -> str | None:
    """At most `max_chars`: the head line and the tail (the innermost frames and the exception), cut between."""
    if text is None or len(text) <= max_chars:
        return text
    head, _, rest = text.partition("\n")
    marker = f"  ... {len(text) - max_chars} characters cut ...\n"
    tail = rest[len(rest) - (max_chars - len(head) - len(marker) - 1):]
    if "\n" in tail:
        tail = tail[tail.index("\n") + 1:]  # from a line's start, so every frame kept is whole
    return f"{head}\n{marker}{tail}"


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
    if isinstance(exc, PROGRAMMING_ERRORS):
        return BUG, False
    if isinstance(exc, ValueError):  # raised on purpose for a value the code refuses: bad input
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
