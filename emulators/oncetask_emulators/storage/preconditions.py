"""Request preconditions (https://cloud.google.com/storage/docs/request-preconditions), decided purely.

A `Match` that does not hold answers 412 Precondition Failed; a `NotMatch` whose value does match answers
304 Not Modified, as the documentation's table says (for reads and writes alike). `ifGenerationMatch=0` means
"no live object may exist"; `ifGenerationNotMatch=0` means "a live object must exist". With no live object,
every other generation or metageneration condition fails with 412. The `ifSource*` family applies the same
rules to the source of a copy or rewrite. ETags (`If-Match`, `If-None-Match`) apply to reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from . import errors
from .checksums import object_etag
from .model import StoredObject

_NAMES = ("GenerationMatch", "GenerationNotMatch", "MetagenerationMatch", "MetagenerationNotMatch")


def parse_int(query: Mapping[str, str], name: str, minimum: int | None = 0) -> int | None:
    """An integer query parameter, or None if absent; a 400 naming it if it is not an integer."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise errors.invalid(f"Invalid value for {name}: '{raw}' is not an integer.") from None
    if minimum is not None and value < minimum:
        raise errors.invalid(f"Invalid value for {name}: {value} is below {minimum}.")
    return value


@dataclass(frozen=True)
class Preconditions:
    if_generation_match: int | None = None
    if_generation_not_match: int | None = None
    if_metageneration_match: int | None = None
    if_metageneration_not_match: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str], prefix: str = "if") -> Preconditions:
        """`prefix` "if" reads ifGenerationMatch...; "ifSource" reads ifSourceGenerationMatch...

        The Python client spells one of them `ifMetaGenerationNotMatch` on uploads; both spellings count.
        """
        values = []
        for name in _NAMES:
            key = prefix + name
            if key not in query:
                key = prefix + name.replace("Metageneration", "MetaGeneration")
            values.append(parse_int(query, key))
        return cls(*values)

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.if_generation_match, self.if_generation_not_match,
                                           self.if_metageneration_match, self.if_metageneration_not_match))

    def check(self, current: StoredObject | None) -> None:
        """Raise 412 or 304 unless every condition holds against `current` (None: no live object)."""
        if self.if_generation_match is not None:
            actual = current.generation if current is not None else 0
            if actual != self.if_generation_match:
                raise errors.precondition_failed()
        if self.if_metageneration_match is not None:
            if current is None or current.metageneration != self.if_metageneration_match:
                raise errors.precondition_failed()
        if self.if_generation_not_match is not None:
            if current is None:
                raise errors.precondition_failed()
            if current.generation == self.if_generation_not_match:
                raise errors.not_modified()
        if self.if_metageneration_not_match is not None:
            if current is None:
                raise errors.precondition_failed()
            if current.metageneration == self.if_metageneration_not_match:
                raise errors.not_modified()


def _etags(header: str) -> set[str]:
    return {tag.strip().strip('"').removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()}


def check_etags(if_match: str | None, if_none_match: str | None, current: StoredObject) -> None:
    """`If-Match` (412 unless one of them is the object's ETag) and `If-None-Match` (304 if one is)."""
    etag = object_etag(current.generation, current.metageneration)
    if if_match is not None:
        tags = _etags(if_match)
        if "*" not in tags and etag not in tags:
            raise errors.precondition_failed()
    if if_none_match is not None:
        tags = _etags(if_none_match)
        if "*" in tags or etag in tags:
            raise errors.not_modified()


def check_bucket(query: Mapping[str, str], metageneration: int) -> None:
    """ifMetagenerationMatch / ifMetagenerationNotMatch on a bucket."""
    match = parse_int(query, "ifMetagenerationMatch")
    not_match = parse_int(query, "ifMetagenerationNotMatch")
    if match is not None and match != metageneration:
        raise errors.precondition_failed()
    if not_match is not None and not_match == metageneration:
        raise errors.not_modified()
