"""Resumable uploads (https://cloud.google.com/storage/docs/performing-resumable-uploads), decided purely.

A session is opened by POST (`uploadType=resumable`) and fed by PUTs to its URL, each with a Content-Range:

- `bytes a-b/total` or `bytes a-b/*`: a chunk. Bytes the session already has are ignored (a resent chunk);
  a chunk that starts past them is refused. Every chunk but the last must hold at least 256 KiB, and only whole
  multiples of 256 KiB are kept; the answer is `308` with `Range: bytes=0-(kept-1)`.
- `bytes */*`: a status query (308, with Range once anything is kept); `bytes */total`: the end, with no data.
- The chunk that reaches the total finishes the upload: checksums are compared, then the preconditions given
  when the session was opened are checked (production checks them when the object is created, not when the
  session opens), and the object is created: 200 with its resource. Asked again, a finished session answers
  the same resource; a session that failed (a short chunk, a precondition, a checksum) answers its error again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import errors

CHUNK_QUANTUM = 256 * 1024

_CHUNK = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_QUERY = re.compile(r"bytes\s+\*/(\d+|\*)", re.IGNORECASE)


@dataclass
class Session:
    upload_id: str
    bucket: str
    name: str
    metadata: dict[str, Any]  # the object resource given at initiation (writable fields, checksums)
    query: dict[str, str]  # the initiation's query: preconditions, predefinedAcl, fields, ...
    content_type: str
    declared_size: int | None  # X-Upload-Content-Length
    created: float
    data: bytearray = field(default_factory=bytearray)
    # The end state: the finished object's (bucket, name, generation), or the error the session ended with.
    result: tuple[str, str, int] | None = None
    error: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        return {"upload_id": self.upload_id, "bucket": self.bucket, "name": self.name, "metadata": self.metadata,
                "query": self.query, "content_type": self.content_type, "declared_size": self.declared_size,
                "created": self.created, "result": list(self.result) if self.result else None,
                "error": self.error}

    @classmethod
    def from_record(cls, record: dict[str, Any], data: bytes) -> Session:
        result = record.pop("result")
        return cls(**record, data=bytearray(data), result=tuple(result) if result else None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChunkPlan:
    append: bytes  # bytes to add to the session
    finish_size: int | None  # the object's final size, if this request finishes the upload


class SessionEnded(errors.StorageError):
    """An error after which the session answers every request with it (a chunk below 256 KiB, as production)."""


def bad_chunk_size(received: int) -> SessionEnded:
    return SessionEnded(
        400, "invalid",
        f"Invalid request.  The number of bytes uploaded is required to be equal or greater than {CHUNK_QUANTUM}, "
        f"except for the final request (it's recommended to be the exact multiple of {CHUNK_QUANTUM}).  The "
        f"received request contained {received} bytes, which does not meet this requirement.",
        plain=True)


def plan_chunk(kept: int, declared_size: int | None, content_range: str | None, body: bytes) -> ChunkPlan:
    """What one PUT to a session does, given the `kept` bytes the session holds."""
    if content_range is None or not content_range.strip():
        # No Content-Range: the whole object in this one request.
        if kept and body:
            raise errors.invalid("A request without Content-Range must carry the whole object.").as_plain()
        return ChunkPlan(body if not kept else b"", len(body) if not kept else kept)
    query = _QUERY.fullmatch(content_range.strip())
    if query is not None:
        if body:
            raise errors.invalid(f"Content-Range {content_range!r} names no bytes, but the request has "
                                 f"{len(body)}.").as_plain()
        total = None if query.group(1) == "*" else int(query.group(1))
        _check_total(total, declared_size)
        if total is not None and total == kept:
            return ChunkPlan(b"", total)
        if total is not None and total < kept:
            raise errors.invalid(f"Content-Range {content_range!r}: the session already holds {kept} bytes, "
                                 f"more than that total.").as_plain()
        return ChunkPlan(b"", None)
    match = _CHUNK.fullmatch(content_range.strip())
    if match is None:
        raise errors.invalid(f"Content-Range {content_range!r} is not 'bytes a-b/total', 'bytes a-b/*' or "
                             f"'bytes */total'.").as_plain()
    first, last = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) == "*" else int(match.group(3))
    _check_total(total, declared_size)
    if last < first or last - first + 1 != len(body):
        raise errors.invalid(f"Content-Range {content_range!r} does not match the {len(body)} bytes "
                             f"sent.").as_plain()
    if total is not None and last >= total:
        raise errors.invalid(f"Content-Range {content_range!r} ends past the object's total size.").as_plain()
    if first > kept:
        raise errors.invalid(f"Content-Range {content_range!r} starts at byte {first}, but the session holds "
                             f"only {kept} bytes: send from byte {kept}.").as_plain()
    new = body[kept - first:] if first < kept else body
    final = total is not None and last + 1 == total
    if final:
        return ChunkPlan(new, total)
    if len(body) < CHUNK_QUANTUM:
        raise bad_chunk_size(len(body))
    end = kept + len(new)
    keep_until = end - end % CHUNK_QUANTUM  # only whole 256 KiB blocks are kept before the last chunk
    return ChunkPlan(new[:max(keep_until - kept, 0)], None)


def _check_total(total: int | None, declared_size: int | None) -> None:
    if total is not None and declared_size is not None and total != declared_size:
        raise errors.invalid(f"The object's total size {total} differs from the X-Upload-Content-Length "
                             f"{declared_size} the session was opened with.").as_plain()


def range_header(kept: int) -> dict[str, str]:
    """The 308 answer's headers: `Range: bytes=0-(kept-1)`, or none while nothing is kept."""
    return {"Range": f"bytes=0-{kept - 1}"} if kept else {}
