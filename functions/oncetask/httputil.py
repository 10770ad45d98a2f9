"""HTTP plumbing shared by the entry points: JSON responses, bounded JSON bodies, errors mapped in one place."""

from __future__ import annotations

import json
from typing import Any

import flask
from google.api_core import exceptions as gexc

from .auth import Forbidden, Unauthenticated
from .errors import InvalidRequest
from .errors import Conflict, JobNotFound, OncetaskError, QuotaExceeded


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}  # e.g. the `Allow` header that RFC 9110 requires with a 405


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, default=str), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> flask.Response:
    headers = {**({"WWW-Authenticate": "Bearer"} if status == 401 else {}), **(headers or {})}
    return json_response(status, {"error": {"code": code, "message": message, "field": field}}, headers)


def read_json(request: flask.Request, max_bytes: int) -> Any:
    """The request's JSON body, refusing (before reading it all) anything larger than `max_bytes`."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise HttpError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {max_bytes} bytes", "body")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise HttpError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {max_bytes} bytes", "body")
    if not raw:
        raise HttpError(400, "INVALID_JSON", "the body is empty; expected a JSON object", "body")
    try:
        body = json.loads(raw)
        # JSON may escape lone surrogates ("\ud800") that no UTF-8 store accepts: refuse them here, clearly.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        # A few kilobytes of "[[[[..." nest past the interpreter's recursion limit: bad input, not a crash.
        raise HttpError(400, "INVALID_JSON", "the body's JSON is nested too deeply", "body") from None
    except (ValueError, UnicodeError) as exc:
        raise HttpError(400, "INVALID_JSON", f"the body is not valid JSON text: {exc}", "body") from exc
    return body


def to_response(exc: Exception) -> flask.Response | None:
    """The one mapping from errors to HTTP answers; None for an unexpected error (the caller logs it, 500)."""
    if isinstance(exc, HttpError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)
    if isinstance(exc, InvalidRequest):
        return error_response(422, exc.code, exc.message, exc.field)
    if isinstance(exc, JobNotFound):
        return error_response(404, exc.code, exc.message)
    if isinstance(exc, Conflict):
        return error_response(409, exc.code, exc.message)
    if isinstance(exc, QuotaExceeded):
        return error_response(429, exc.code, exc.message, headers={"Retry-After": "60"})
    if isinstance(exc, Unauthenticated):
        return error_response(401, "UNAUTHENTICATED", str(exc))
    if isinstance(exc, Forbidden):
        return error_response(403, "PERMISSION_DENIED", str(exc))
    if isinstance(exc, gexc.InvalidArgument):  # a value Firestore refuses (e.g. an integer beyond 64 bits)
        return error_response(422, "INVALID_ARGUMENT", f"a value was refused by the database: {exc.message}",
                              "payload")
    if isinstance(exc, OncetaskError) and exc.retryable:
        return error_response(503, exc.code, exc.message)
    return None
