"""Errors as Cloud Storage answers them: an HTTP status, a reason and a message.

The JSON API answers `{"error": {"code", "message", "errors": [{"message", "domain", "reason"}]}}`; media
downloads and the resumable-upload protocol answer the bare message as plain text (the client shows either in its
exception). A 304 has no body at all. Messages are production's where they are known (404s, 409s, 412, the bad
chunk size, the checksum mismatch); the rest say plainly what is wrong.
"""

from __future__ import annotations

import json


class StorageError(Exception):
    """One error answer. `plain` sends the message as text/plain instead of the JSON error object."""

    def __init__(self, status: int, reason: str, message: str, *, plain: bool = False,
                 location: str | None = None, location_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.plain = plain
        self.location = location
        self.location_type = location_type
        self.headers = headers or {}

    def as_plain(self) -> StorageError:
        """The same error as a media download or the upload protocol sends it (text, not JSON)."""
        return StorageError(self.status, self.reason, self.message, plain=True, headers=self.headers)

    def body(self) -> tuple[str, bytes]:
        """(content type, body bytes); an empty body for a 304."""
        if self.status == 304:
            return "", b""
        if self.plain:
            return "text/plain; charset=utf-8", self.message.encode()
        detail: dict[str, str] = {"message": self.message, "domain": "global", "reason": self.reason}
        if self.location_type:
            detail["locationType"] = self.location_type
        if self.location:
            detail["location"] = self.location
        payload = {"error": {"code": self.status, "message": self.message, "errors": [detail]}}
        return "application/json; charset=UTF-8", json.dumps(payload).encode()


def bucket_not_found() -> StorageError:
    return StorageError(404, "notFound", "The specified bucket does not exist.")


def object_not_found(bucket: str, name: str) -> StorageError:
    return StorageError(404, "notFound", f"No such object: {bucket}/{name}")


def upload_not_found() -> StorageError:
    return StorageError(404, "notFound", "No such upload session: it was cancelled, or never existed.", plain=True)


def precondition_failed() -> StorageError:
    return StorageError(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.",
                        location="If-Match", location_type="header")


def not_modified() -> StorageError:
    """What a failed ifGenerationNotMatch, ifMetagenerationNotMatch or If-None-Match answers (no body)."""
    return StorageError(304, "notModified", "Not Modified")


def invalid(message: str, reason: str = "invalid") -> StorageError:
    return StorageError(400, reason, message)


def required(what: str) -> StorageError:
    return StorageError(400, "required", f"Required: {what}" if what else "Required")


def parse_error() -> StorageError:
    return StorageError(400, "parseError", "Parse Error")


def conflict(message: str) -> StorageError:
    return StorageError(409, "conflict", message)


def range_not_satisfiable(size: int) -> StorageError:
    return StorageError(416, "requestedRangeNotSatisfiable", "Request range not satisfiable", plain=True,
                        headers={"Content-Range": f"bytes */{size}"})


def no_such_path(method: str, path: str) -> StorageError:
    return StorageError(404, "notFound", f"Not Found: no {method} {path} in the Cloud Storage JSON API")


def checksum_mismatch(kind: str, provided: str, calculated: str) -> StorageError:
    """`kind` is CRC32C or MD5, as the client's checksum names it."""
    label = "MD5 hash" if kind == "MD5" else kind
    return StorageError(400, "invalid", f'Provided {label} "{provided}" doesn\'t match calculated {label} '
                                        f'"{calculated}".')
