"""Input files of job types: a validated `gs://bucket/object` payload field, and a capped read of it."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from oncetask import Context, PermanentError

# Cloud Storage's bucket naming rules (the dotted, domain-named form aside): lowercase letters, digits, - and _.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]")


def check_gs_uri(value: str) -> str:
    """A `gs://bucket/object` URI with a valid bucket name and a non-empty object name; else a clear ValueError."""
    if not value.startswith("gs://"):
        raise ValueError("must be a gs://bucket/object URI")
    bucket, slash, name = value[5:].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError(f"bucket name {bucket!r} is not a valid Cloud Storage bucket name")
    if not slash or not name:
        raise ValueError("names no object: expected gs://bucket/object")
    if len(name.encode()) > 1024 or any(ch in name for ch in "\r\n\x00"):
        raise ValueError("object name must be at most 1024 bytes without line breaks or NUL")
    return value


# The schema documents the shape for API clients; check_gs_uri enforces it with messages naming the problem.
GsUri = Annotated[str, Field(json_schema_extra={"pattern": r"^gs://[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]/.+$"}),
                  AfterValidator(check_gs_uri)]


def read_source(ctx: Context, uri: str, max_bytes: int) -> bytes:
    """The job's input file, refusing (permanently) one that is missing or larger than `max_bytes`."""
    ctx.check()
    try:
        return ctx.artifacts.read(uri, max_bytes=max_bytes)
    except PermanentError as exc:
        if exc.code == "ARTIFACT_NOT_FOUND":
            raise PermanentError("SOURCE_NOT_FOUND", f"the source {uri} does not exist") from exc
        if exc.code == "OBJECT_TOO_LARGE":
            raise PermanentError("SOURCE_TOO_LARGE", exc.message) from exc
        raise
