"""objects.list, decided purely: prefix, delimiter, offsets, matchGlob, versions and paging over sorted names.

As in production, `maxResults` bounds items and prefixes together (at most 1,000 a page), a prefix is reported
once and stands for every name under it, and `nextPageToken` is opaque; ours encodes where the page stopped, so
a page is stable while other objects are written, and appears only when another entry exists.
"""

from __future__ import annotations

import base64
import bisect
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import errors
from .model import StoredObject

MAX_PAGE = 1000


@dataclass(frozen=True)
class ListRequest:
    prefix: str = ""
    delimiter: str = ""
    start_offset: str = ""
    end_offset: str = ""
    match_glob: str | None = None
    include_trailing_delimiter: bool = False
    versions: bool = False
    max_results: int = MAX_PAGE
    page_token: str | None = None


@dataclass
class Page:
    items: list[StoredObject] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    next_page_token: str | None = None


@dataclass(frozen=True)
class _Cursor:
    """Where a page stopped: after this name (and generation, when listing versions), or after this prefix."""

    name: str
    generation: int | None = None
    is_prefix: bool = False

    def encode(self) -> str:
        raw = json.dumps([self.name, self.generation, self.is_prefix], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode()

    @classmethod
    def decode(cls, token: str) -> _Cursor:
        try:
            name, generation, is_prefix = json.loads(base64.urlsafe_b64decode(token.encode()))
            if not isinstance(name, str) or not isinstance(is_prefix, bool) or not (
                    generation is None or isinstance(generation, int)):
                raise ValueError
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise errors.invalid(f"Invalid page token: {token!r}.") from None
        return cls(name, generation, is_prefix)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """matchGlob: `*` (not across '/'), `**` (across), `**/` (any directories, none included), `?`, `[a-z]`,
    `[!a-z]`, `{a,b}`."""
    out: list[str] = []
    i, depth = 0, 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise errors.invalid(f"Invalid matchGlob {pattern!r}: '[' is never closed.")
            body = pattern[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        elif c == "{":
            depth += 1
            out.append("(?:")
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
        elif c == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(c))
        i += 1
    if depth:
        raise errors.invalid(f"Invalid matchGlob {pattern!r}: '{{' is never closed.")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as error:
        raise errors.invalid(f"Invalid matchGlob {pattern!r}: {error}.") from None


def list_page(names: Sequence[str], versions_of: Callable[[str], Sequence[StoredObject]],
              request: ListRequest) -> Page:
    """One page over `names` (sorted); `versions_of(name)` gives the objects to list for a name, oldest first
    (the live one only, unless listing versions)."""
    limit = min(max(request.max_results, 1), MAX_PAGE) if request.max_results else MAX_PAGE
    glob = glob_regex(request.match_glob) if request.match_glob else None
    cursor = _Cursor.decode(request.page_token) if request.page_token else None
    page = Page()
    seen_prefixes: set[str] = set()
    count = 0
    last: _Cursor | None = None

    index = bisect.bisect_left(names, max(request.prefix, request.start_offset))
    if cursor is not None:
        resume = bisect.bisect_left(names, cursor.name)
        index = max(index, resume)

    while index < len(names):
        name = names[index]
        if not name.startswith(request.prefix):
            break  # sorted: every later name sorts after the prefixed ones
        if request.end_offset and name >= request.end_offset:
            break
        if cursor is not None and (name < cursor.name or (cursor.is_prefix and name.startswith(cursor.name))):
            index += 1
            continue
        if glob is not None and not glob.fullmatch(name):
            index += 1
            continue
        if request.delimiter:
            rest = name[len(request.prefix):]
            at = rest.find(request.delimiter)
            if at >= 0:
                prefix = request.prefix + rest[:at + len(request.delimiter)]
                if prefix not in seen_prefixes:
                    if count == limit:
                        page.next_page_token = last.encode() if last else None
                        return page
                    seen_prefixes.add(prefix)
                    page.prefixes.append(prefix)
                    count += 1
                    if request.include_trailing_delimiter and name == prefix:
                        page.items.extend(_after(versions_of(name), cursor, name))
                    last = _Cursor(prefix, None, True)
                index += 1
                while index < len(names) and names[index].startswith(prefix):
                    index += 1
                continue
        for obj in _after(versions_of(name), cursor, name):
            if count == limit:
                page.next_page_token = last.encode() if last else None
                return page
            page.items.append(obj)
            count += 1
            last = _Cursor(name, obj.generation if request.versions else None)
        index += 1
    return page


def _after(objects: Sequence[StoredObject], cursor: _Cursor | None, name: str) -> Sequence[StoredObject]:
    """The objects of `name` a resumed page still has to list (those past the cursor's generation)."""
    if cursor is None or cursor.is_prefix or cursor.name != name:
        return objects
    if cursor.generation is None:
        return ()  # the name was listed whole on the previous page
    return [o for o in objects if o.generation > cursor.generation]
