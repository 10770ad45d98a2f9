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

    def __post_init__(self) -> None:
        # Most patterns have at most one recursive wildcard: match those by slicing, not by search.
        recursive = [i for i, s in enumerate(self.pattern) if s.kind == "recursive"]
        self.simple = len(recursive) <= 1
        self.split = recursive[0] if recursive else None


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


def match_flat(flat: FlatMatch, items: tuple, version: str) -> dict[str, object] | None:
    """`match` for a flattened block, taking the quick way when its pattern allows."""
    if not flat.simple:
        return match(flat.pattern, items, version)
    pattern = flat.pattern
    if flat.split is None:
        if len(items) != len(pattern):
            return None
        return _fixed(pattern, items, {})
    head, tail = pattern[:flat.split], pattern[flat.split + 1:]
    middle = len(items) - len(head) - len(tail)
    if middle < (0 if version == "2" else 1):
        return None
    bindings = _fixed(head, items[:len(head)], {})
    if bindings is None or _fixed(tail, items[len(items) - len(tail):], bindings) is None:
        return None
    taken = items[len(head):len(head) + middle]
    if ANY_PREFIX in taken or ANY_ID in taken:
        bindings[pattern[flat.split].text] = UNKNOWN_PATH
    else:
        bindings[pattern[flat.split].text] = Path(tuple(taken))
    return bindings


def _fixed(pattern: tuple[Segment, ...], items: tuple, bindings: dict[str, object]) -> dict[str, object] | None:
    for seg, item in zip(pattern, items):
        if seg.kind == "literal":
            if item != seg.text:
                return None
        elif item is ANY_PREFIX:
            return None
        else:
            bindings[seg.text] = item
    return bindings


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
