"""Field paths (`a.b`, `` `x.y`.z ``) and document names, parsed and validated as production does."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from .errors import InvalidArgument
from .protos import ValuePb

NAME_FIELD = "__name__"
MAX_ID_BYTES = 1500
_SIMPLE_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_RESERVED = re.compile(r"__.*__", re.DOTALL)
_NUMERIC_ID = re.compile(r"__id(-?[0-9]+)__")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@functools.lru_cache(maxsize=4096)  # queries parse the same few paths for every document
def parse_field_path(path: str) -> tuple[str, ...]:
    """Split a field path into its segments. Segments are simple names or `backtick-quoted` text in which
    `\\`` and `\\\\` are escapes. Raises InvalidArgument naming the path if it is malformed."""
    if not path:
        raise InvalidArgument("Invalid field path: a field path must not be empty.")
    segments: list[str] = []
    i, n = 0, len(path)
    while True:
        if i < n and path[i] == "`":
            i += 1
            chars: list[str] = []
            while i < n and path[i] != "`":
                if path[i] == "\\":
                    if i + 1 >= n:
                        raise InvalidArgument(f"Invalid field path: {path!r} ends inside an escape.")
                    i += 1
                chars.append(path[i])
                i += 1
            if i >= n:
                raise InvalidArgument(f"Invalid field path: {path!r} has an unterminated backtick.")
            i += 1
            segment = "".join(chars)
        else:
            end = path.find(".", i)
            end = n if end < 0 else end
            segment = path[i:end]
            if "`" in segment:
                raise InvalidArgument(f"Invalid field path: {path!r} has a backtick inside an unquoted segment.")
            i = end
        if not segment:
            raise InvalidArgument(f"Invalid field path: {path!r} has an empty segment.")
        segments.append(segment)
        if i == n:
            return tuple(segments)
        if path[i] != ".":
            raise InvalidArgument(f"Invalid field path: {path!r} needs a '.' after a quoted segment.")
        i += 1
        if i == n:
            raise InvalidArgument(f"Invalid field path: {path!r} ends with '.'.")


def format_field_path(path: tuple[str, ...]) -> str:
    """The canonical text of a path, quoting segments that are not simple names."""
    return ".".join(s if _SIMPLE_SEGMENT.fullmatch(s) else "`" + s.replace("\\", "\\\\").replace("`", "\\`") + "`"
                    for s in path)


def get_field(fields: Mapping[str, ValuePb], path: tuple[str, ...]) -> ValuePb | None:
    """The value at `path` inside a map's fields, or None if absent (or if an inner segment is not a map)."""
    value: ValuePb | None = None
    for i, segment in enumerate(path):
        if segment not in fields:
            return None
        value = fields[segment]
        if i < len(path) - 1:
            if value.WhichOneof("value_type") != "map_value":
                return None
            fields = value.map_value.fields
    return value


def numeric_id(segment: str) -> int | None:
    """The number of a numeric document ID (`__id7__`, `__id-2__`, any 64-bit integer), else None.

    Production reserves IDs matching `__.*__` except these, which it keeps from Datastore's numeric keys: it
    accepts them as document IDs and orders them before every other ID, by number."""
    match = _NUMERIC_ID.fullmatch(segment)
    if match is None:
        return None
    number = int(match.group(1))
    return number if INT64_MIN <= number <= INT64_MAX else None


def validate_document_id(doc_id: str, what: str = "Document ID") -> None:
    """A document (or collection) ID: not empty, '.', '..', not containing '/', not `__.*__` (a document ID may
    be numeric, `__id<int64>__`), <= 1500 bytes."""
    if not doc_id:
        raise InvalidArgument(f"{what} must not be empty.")
    if doc_id in (".", ".."):
        raise InvalidArgument(f"{what} {doc_id!r} is not allowed: '.' and '..' are reserved.")
    if "/" in doc_id:
        raise InvalidArgument(f"{what} {doc_id!r} must not contain '/'.")
    if _RESERVED.fullmatch(doc_id) and not (what == "Document ID" and numeric_id(doc_id) is not None):
        raise InvalidArgument(f"{what} {doc_id!r} is not allowed: IDs matching __.*__ are reserved.")
    if len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
        raise InvalidArgument(f"{what} is longer than {MAX_ID_BYTES} bytes.")


def split_document_name(name: str) -> tuple[str, tuple[str, ...]]:
    """(database root `projects/p/databases/d/documents`, the segments after it). InvalidArgument if the name
    does not have that shape."""
    parts = name.split("/")
    if len(parts) < 5 or parts[0] != "projects" or parts[2] != "databases" or parts[4] != "documents" \
            or not parts[1] or not parts[3]:
        raise InvalidArgument(
            f"Invalid resource name {name!r}: expected projects/{{project}}/databases/{{database}}/documents/..."
        )
    return "/".join(parts[:5]), tuple(parts[5:])


def validate_document_name(name: str) -> None:
    """A full document name: the root, then collection/document ID pairs, each segment a valid ID."""
    _, segments = split_document_name(name)
    if not segments or len(segments) % 2:
        raise InvalidArgument(
            f"Invalid document name {name!r}: a document name has an even number of segments after 'documents'."
        )
    for i, segment in enumerate(segments):
        validate_document_id(segment, "Collection ID" if i % 2 == 0 else "Document ID")


def validate_field_name(name: str) -> None:
    """A field name written to a document: not empty, not `__.*__` (reserved)."""
    if not name:
        raise InvalidArgument("Field names must not be empty.")
    if _RESERVED.fullmatch(name):
        raise InvalidArgument(f"Field name {name!r} is not allowed: names matching __.*__ are reserved.")
