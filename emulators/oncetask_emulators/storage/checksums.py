"""The hashes and ETags Cloud Storage reports, encoded as production encodes them.

md5Hash and crc32c are base64 of the digest (crc32c big-endian, 4 bytes); the client compares them with its own
on upload and download. An object's ETag is base64 of the varint-encoded pair (generation, metageneration) as
protobuf fields 1 and 2 ("CAE=" for a bucket at metageneration 1), so it changes whenever either does.
"""

from __future__ import annotations

import base64
import hashlib

import google_crc32c


def crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def object_etag(generation: int, metageneration: int) -> str:
    return base64.b64encode(b"\x08" + _varint(generation) + b"\x10" + _varint(metageneration)).decode()


def bucket_etag(metageneration: int) -> str:
    return base64.b64encode(b"\x08" + _varint(metageneration)).decode()


def parse_hash_header(value: str) -> dict[str, str]:
    """`crc32c=AAAAAA==,md5=...` (x-goog-hash) -> {"crc32c": ..., "md5": ...}; unknown kinds are ignored."""
    found: dict[str, str] = {}
    for part in value.split(","):
        kind, _, digest = part.strip().partition("=")
        if kind.lower() in ("crc32c", "md5") and digest:
            found[kind.lower()] = digest.strip()
    return found
