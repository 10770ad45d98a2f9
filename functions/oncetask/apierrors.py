"""The client's errors: one class per kind of refusal a caller would handle, each carrying the API's HTTP `status`,
`code`, `message` and `field`. Both clients raise the same ones for the same problem: the HTTP client reads them
from the API's answers, the direct client maps the product's own exceptions to what the API would have answered
(`httputil.to_response` is that mapping's HTTP side; the two must agree)."""

from __future__ import annotations

import json
from typing import Any

from .errors import Conflict, JobNotFound, OncetaskError, is_retryable


class ApiError(Exception):
    """A refusal of the oncetask API (or of the same checks, for a direct client): `status`, `code`, `message` and
    the request `field` at fault, when one is."""

    default_code = "ERROR"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or self.default_code
        self.message = message
        self.field = field

    def __str__(self) -> str:
        status = f"HTTP {self.status} " if self.status else ""
        where = f" (field {self.field})" if self.field else ""
        return f"{status}{self.code}: {self.message}{where}"


class InvalidRequestError(ApiError):
    """The request is wrong and will stay wrong (400, 413, 422): an unknown job type, a payload its model refuses,
    a body too large; `field` names the part at fault (`job_type`, `payload.width`, `body`...)."""

    default_code = "INVALID_ARGUMENT"


class UnauthenticatedError(ApiError):
    """No token, or one the API does not accept (401)."""

    default_code = "UNAUTHENTICATED"


class PermissionDeniedError(ApiError):
    """The caller is known but may not do this (403), e.g. Cloud Run refusing an identity without the invoker role."""

    default_code = "PERMISSION_DENIED"


class NotFoundError(ApiError):
    """No such job for this caller (404): another caller's job is as good as absent."""

    default_code = "NOT_FOUND"


class ConflictError(ApiError):
    """The request contradicts what is stored (409): a key reused with another payload, retrying a job that has not
    failed, cancelling a finished one."""

    default_code = "CONFLICT"


class UnavailableError(ApiError):
    """A transient failure (503 and other 5xx, 408, 429, or the API could not be reached: `status` None, code
    UNREACHABLE); the clients retry these a few times before raising it."""

    default_code = "UNAVAILABLE"


BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError, 413: InvalidRequestError, 422: InvalidRequestError,
    401: UnauthenticatedError, 403: PermissionDeniedError, 404: NotFoundError, 409: ConflictError,
    408: UnavailableError, 429: UnavailableError,  # Cloud Run answers 429 when it has no instance free
}


def from_response(status: int, text: str, reason: str = "") -> ApiError:
    """The error for an HTTP answer: the API's `{"error": {code, message, field}}` when the body is one; otherwise
    (a front end's page, Google's JSON with a numeric code) the status alone decides, the body is the message."""
    kind = BY_STATUS.get(status) or (UnavailableError if status >= 500 else ApiError)
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        code = error.get("code")
        return kind(str(error.get("message") or reason or status), status=status,
                    code=code if isinstance(code, str) else None, field=_str_or_none(error.get("field")))
    return kind(text.strip()[:500] or reason or f"HTTP {status}", status=status)


def from_exception(exc: BaseException) -> ApiError | None:
    """What the API would have answered for an exception of the product (a direct client's call); None for an
    unexpected one, which the caller lets through as the bug it is."""
    from google.api_core import exceptions as gexc  # noqa: PLC0415 - only a direct client needs these
    from google.auth import exceptions as auth_exc  # noqa: PLC0415

    from .commands import InvalidRequest  # noqa: PLC0415 - imports the Google clients

    if isinstance(exc, InvalidRequest):
        return InvalidRequestError(exc.message, status=422, code=exc.code, field=exc.field)
    if isinstance(exc, JobNotFound):
        return NotFoundError(exc.message, status=404, code=exc.code)
    if isinstance(exc, Conflict):
        return ConflictError(exc.message, status=409, code=exc.code)
    if isinstance(exc, gexc.InvalidArgument):  # a value Firestore refuses (e.g. an integer beyond 64 bits)
        return InvalidRequestError(f"a value was refused by the database: {exc.message}", status=422,
                                   code="INVALID_ARGUMENT", field="payload")
    if isinstance(exc, gexc.Forbidden):  # PermissionDenied is its gRPC name (a subclass)
        return PermissionDeniedError(str(exc.message), status=403)
    # Unauthenticated is Unauthorized's gRPC name; no credentials, or none that refresh, are the same to a caller.
    if isinstance(exc, (gexc.Unauthorized, auth_exc.DefaultCredentialsError, auth_exc.RefreshError)):
        return UnauthenticatedError(str(exc), status=401)
    if is_retryable(exc):
        code = exc.code if isinstance(exc, OncetaskError) else "UNAVAILABLE"
        return UnavailableError(f"a backend is temporarily unavailable: {exc}", status=503, code=code)
    return None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
