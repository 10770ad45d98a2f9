"""Which `match` blocks apply to a document path, and what their wildcards bind to.

Nested blocks are flattened once at load time into full patterns. A path to match is a tuple of segments;
for a query, the segments the query leaves open are placeholders: ANY_ID (one unknown segment, the document
ID or a collection group's collection) and ANY_PREFIX (any number of unknown segments, the depth of a
collection group). A pattern applies to a query only if it matches *every* path the placeholders stand for:
a literal or a `{single}` wildcard never absorbs ANY_PREFIX, only a `{name=**}` wildcard does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .syntax import Allow, MatchBlock, Segment
from .values import Path, Symbolic


class Placeholder(Symbolic):
    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return self.what


ANY_ID = Placeholder("the document ID")
ANY_PREFIX = Placeholder("the path of a collection group")
UNKNOWN_PATH = Placeholder("a path wildcard over a collection group")

READ_METHODS = ("get", "list")
WRITE_METHODS = ("create", "update", "delete")
_EXPANSION = {"read": READ_METHODS, "write": WRITE_METHODS}


@dataclass
class FlatMatch:
    pattern: tuple[Segment, ...]
    allows: dict[str, list[Allow]]  # by concrete method: get, list, create, update, delete


def flatten(blocks: list[MatchBlock], prefix: tuple[Segment, ...] = ()) -> list[FlatMatch]:
    out: list[FlatMatch] = []
    for block in blocks:
        pattern = prefix + tuple(block.segments)
        by_method: dict[str, list[Allow]] = {}
        for allow in block.allows:
            for written in allow.methods:
                for method in _EXPANSION.get(written, (written,)):
                    by_method.setdefault(method, [])
                    if allow not in by_method[method]:
                        by_method[method].append(allow)
        if by_method:
            out.append(FlatMatch(pattern, by_method))
        out.extend(flatten(block.matches, pattern))
    return out


def match(pattern: tuple[Segment, ...], items: tuple, version: str) -> dict[str, object] | None:
    """The wildcard bindings if `pattern` matches all of `items`, else None. With rules_version '2' a
    recursive wildcard matches zero or more segments; with '1', one or more."""
    minimum = 0 if version == "2" else 1
    bindings: dict[str, object] = {}

    def walk(pi: int, ii: int) -> bool:
        if pi == len(pattern):
            return ii == len(items)
        seg = pattern[pi]
        if seg.kind == "literal":
            return ii < len(items) and items[ii] == seg.text and walk(pi + 1, ii + 1)
        if seg.kind == "single":
            if ii >= len(items) or items[ii] is ANY_PREFIX:
                return False
            bindings[seg.text] = items[ii]
            return walk(pi + 1, ii + 1)
        for end in range(ii + minimum, len(items) + 1):
            taken = items[ii:end]
            if all(isinstance(t, str) for t in taken):
                bindings[seg.text] = Path(tuple(taken))  # type: ignore[arg-type]
            else:
                bindings[seg.text] = UNKNOWN_PATH
            if walk(pi + 1, end):
                return True
        return False

    return bindings if walk(0, 0) else None
