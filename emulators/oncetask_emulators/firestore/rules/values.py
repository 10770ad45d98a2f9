"""Runtime values of the rules language, and Firestore values converted to them.

Plain Python carries most kinds: None (null), bool, int, float, str, bytes, list, dict (map). The rest are
small classes here. `bool` is a Python int, so every type decision tests for bool first.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..protos import ValuePb

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
NANOS = 1_000_000_000


class EvalError(Exception):
    """An error value: the expression (and so its `allow`) fails, as in production."""


class Unknown(EvalError):
    """A fact about a query's results the query's constraints do not establish ("rules are not filters")."""


@dataclass(frozen=True, slots=True)
class Timestamp:
    nanos: int  # since the Unix epoch, UTC

    def datetime(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.nanos // NANOS, datetime.timezone.utc)


@dataclass(frozen=True, slots=True)
class Duration:
    nanos: int


@dataclass(frozen=True, slots=True)
class LatLng:
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Path:
    """A document path as rules see it: `/databases/(default)/documents/jobs/j1` is
    ("databases", "(default)", "documents", "jobs", "j1")."""

    segments: tuple[str, ...]

    def __str__(self) -> str:
        return "/" + "/".join(self.segments)


class RSet:
    """A set of rules values (from `list.toSet()`, `map.keys()` diffs...), keyed by value equality."""

    __slots__ = ("items",)

    def __init__(self, values: Iterable[object] = ()):
        self.items: dict[object, object] = {}
        for v in values:
            self.items.setdefault(hash_key(v), v)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, value: object) -> bool:
        return hash_key(value) in self.items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RSet) and self.items.keys() == other.items.keys()

    def __hash__(self) -> int:
        return hash(frozenset(self.items))

    def values(self) -> list[object]:
        return list(self.items.values())


@dataclass(frozen=True, slots=True)
class MapDiff:
    added: RSet
    removed: RSet
    changed: RSet
    unchanged: RSet


@dataclass(frozen=True, slots=True)
class Namespace:
    """`math`, `duration`, `timestamp`, `latlng`: names whose members are functions."""

    name: str


def type_name(v: object) -> str:
    """The rules type of a value, as `is` and error messages name it."""
    t = type(v)
    if v is None:
        return "null"
    if t is bool:
        return "bool"
    if isinstance(v, int) and t is not bool:
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if t is bytes:
        return "bytes"
    if t is list:
        return "list"
    if t is dict:
        return "map"
    return _CLASS_NAMES.get(t, t.__name__)


_CLASS_NAMES = {Timestamp: "timestamp", Duration: "duration", LatLng: "latlng", Path: "path", RSet: "set",
                MapDiff: "map_diff", Namespace: "namespace"}


def is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and type(v) is not bool


def hash_key(v: object) -> object:
    """A hashable stand-in that is equal exactly when rules equality says the values are equal."""
    t = type(v)
    if t is bool:
        return ("b", v)
    if is_number(v):
        return ("n", v)  # 1 and 1.0: equal, same hash
    if t is list:
        return ("l", tuple(hash_key(x) for x in v))  # type: ignore[union-attr]
    if t is dict:
        return ("m", frozenset((k, hash_key(x)) for k, x in v.items()))  # type: ignore[union-attr]
    if t is RSet:
        return ("s", frozenset(v.items))  # type: ignore[union-attr]
    if v is None or isinstance(v, (str, bytes, Timestamp, Duration, LatLng, Path, MapDiff)):
        return (t.__name__, v)
    raise Unknown(f"{type_name(v)} cannot be compared here")


def equals(a: object, b: object) -> bool:
    """Rules equality: numbers by value (1 == 1.0), containers element by element, other kinds never equal."""
    ta, tb = type(a), type(b)
    if ta is tb and ta in (str, int, bool, type(None)):
        return a == b
    if (ta is bool) != (tb is bool):
        return False
    if is_number(a) and is_number(b):
        return a == b
    if ta is list and tb is list:
        return len(a) == len(b) and all(equals(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    if ta is dict and tb is dict:
        return a.keys() == b.keys() and all(equals(a[k], b[k]) for k in a)  # type: ignore[union-attr,index]
    if isinstance(a, Symbolic) or isinstance(b, Symbolic):
        raise Unknown("a value inside a container is not fixed by the query")
    if ta is tb:
        return a == b
    return False


def from_pb(v: ValuePb) -> object:
    """The rules value of a stored Firestore value."""
    kind = v.WhichOneof("value_type")
    if kind == "string_value":
        return v.string_value
    if kind == "integer_value":
        return v.integer_value
    if kind == "boolean_value":
        return v.boolean_value
    if kind == "double_value":
        return v.double_value
    if kind == "map_value":
        return fields_to_map(v.map_value.fields)
    if kind == "array_value":
        return [from_pb(x) for x in v.array_value.values]
    if kind == "timestamp_value":
        return Timestamp(v.timestamp_value.seconds * NANOS + v.timestamp_value.nanos)
    if kind == "bytes_value":
        return bytes(v.bytes_value)
    if kind == "reference_value":
        return path_of_name(v.reference_value)
    if kind == "geo_point_value":
        return LatLng(v.geo_point_value.latitude, v.geo_point_value.longitude)
    return None  # null_value, or unset


def fields_to_map(fields) -> dict:
    return {key: from_pb(value) for key, value in fields.items()}


def path_of_name(name: str) -> Path:
    """`projects/p/databases/d/documents/a/b` -> /databases/d/documents/a/b."""
    parts = name.split("/")
    return Path(tuple(parts[2:]) if len(parts) >= 4 and parts[0] == "projects" else tuple(p for p in parts if p))


def check_int(v: int) -> int:
    if not INT64_MIN <= v <= INT64_MAX:
        raise EvalError("integer overflow")
    return v


def timestamp_of(dt: datetime.datetime) -> Timestamp:
    delta = dt - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return Timestamp((delta.days * 86_400 + delta.seconds) * NANOS + delta.microseconds * 1000)


def finite(x: float) -> bool:
    return not (math.isinf(x) or math.isnan(x))


class LooseInt(int):
    """An integer a query's equality filter fixes: a stored 1.0 matches it too, so `is int` is unknown."""


class LooseFloat(float):
    """A double a query's equality filter fixes: a stored integer may match it too."""


class Symbolic:
    """A value known only through a query's constraints (see symbolic.py). Every operation the evaluator does
    not route to one of these methods is Unknown, so the list rule is refused unless proven."""

    def member(self, name: str) -> object:
        raise Unknown(f"{self} is not fixed by the query")

    def compare(self, op: str, other: object, flipped: bool) -> bool:
        raise Unknown(f"{self} is not fixed by the query")

    def contains(self, item: object) -> bool:
        raise Unknown(f"{self} is not fixed by the query")

    def is_type(self, name: str) -> bool:
        raise Unknown(f"{self} is not fixed by the query")
