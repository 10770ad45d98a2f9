"""The body of a multipart upload (`uploadType=multipart`): a JSON metadata part, then the media part.

RFC 2387 `multipart/related` with the boundary from the Content-Type header; the media part's own
Content-Type becomes the object's when the metadata names none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from . import errors

_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


@dataclass(frozen=True)
class MultipartBody:
    metadata: dict[str, Any]
    media: bytes
    media_content_type: str | None


def boundary_of(content_type: str | None) -> str:
    if not content_type or not content_type.lower().startswith("multipart/related"):
        raise errors.invalid("A multipart upload needs Content-Type: multipart/related with a boundary.")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise errors.invalid("The multipart Content-Type names no boundary.")
    return match.group(1) or match.group(2)


def _split_part(part: bytes) -> tuple[dict[str, str], bytes]:
    """A part's headers (lower-cased names) and its body."""
    if part.startswith(b"\r\n"):
        part = part[2:]
    head, sep, body = part.partition(b"\r\n\r\n")
    if not sep:
        if part.startswith(b"\r\n"):  # no headers at all
            return {}, part[2:]
        raise errors.invalid("A part of the multipart body has no blank line after its headers.")
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n"):
        if not line.strip():
            continue
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise errors.invalid(f"A multipart header line is malformed: {line[:80]!r}.")
        headers[name.strip().lower()] = value.strip()
    return headers, body


def parse(body: bytes, content_type: str | None) -> MultipartBody:
    boundary = boundary_of(content_type).encode("latin-1")
    delimiter = b"--" + boundary
    if delimiter not in body:
        raise errors.invalid("The multipart body does not contain its boundary.")
    pieces = body.split(delimiter)
    # pieces[0] is the preamble; the last piece starts with "--" (the close delimiter)
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        if piece.endswith(b"\r\n"):
            piece = piece[:-2]  # the CRLF before the next delimiter belongs to it
        parts.append(piece)
    if len(parts) != 2:
        raise errors.invalid(f"A multipart upload has exactly two parts (metadata, then media); got {len(parts)}.")
    meta_headers, meta_body = _split_part(parts[0])
    media_headers, media = _split_part(parts[1])
    try:
        metadata = json.loads(meta_body.decode("utf-8")) if meta_body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise errors.parse_error() from None
    if not isinstance(metadata, dict):
        raise errors.invalid("The metadata part of a multipart upload must be a JSON object.")
    return MultipartBody(metadata, media, media_headers.get("content-type"))
