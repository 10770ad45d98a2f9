"""The Range header of a media download (RFC 9110 byte ranges, one range, as the client sends them).

`bytes=a-b`, `bytes=a-` and `bytes=-n`; an end past the object is cut to its last byte; a start at or past its
end (every range of an empty object) is unsatisfiable: 416 with `Content-Range: bytes */size`. A header that is
not a single byte range is ignored and the whole object is sent, as HTTP prescribes.
"""

from __future__ import annotations

import re

from . import errors

_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, or None for the whole object; raises 416 if the range cannot be served."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header)
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # a suffix: the last n bytes
        count = int(last)
        if count == 0 or size == 0:
            raise errors.range_not_satisfiable(size)
        return max(size - count, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        raise errors.range_not_satisfiable(size)
    return start, min(end, size - 1)
