"""Firestore values: the total order used by queries and cursors, and equality as filters and transforms see it.

Order across kinds: null < boolean < number < timestamp < string < bytes < reference < geo point < array
< vector < map. A vector is a map `{"__type__": "__vector__", "value": [doubles]}`; vectors order by length,
then element by element.
References compare segment by segment.
Integers and doubles are one kind, compared by exact value; NaN sorts below every other number and equals NaN
(the order must be total so that sorting and cursors are deterministic).
"""

from __future__ import annotations

import math

from . import paths
from .errors import InvalidArgument
from .protos import ValuePb

NULL, BOOLEAN, NUMBER, TIMESTAMP, STRING, BYTES, REFERENCE, GEO_POINT, ARRAY, VECTOR, MAP = range(11)

_RANK_OF_KIND = {
    None: NULL,  # an unset Value is read as null, as production does
    "null_value": NULL,
    "boolean_value": BOOLEAN,
    "integer_value": NUMBER,
    "double_value": NUMBER,
    "timestamp_value": TIMESTAMP,
    "string_value": STRING,
    "bytes_value": BYTES,
    "reference_value": REFERENCE,
    "geo_point_value": GEO_POINT,
    "array_value": ARRAY,
    "map_value": MAP,
}


def kind(v: ValuePb) -> str | None:
    """The name of the set member of the `value_type` oneof (None when unset)."""
    return v.WhichOneof("value_type")


def type_rank(v: ValuePb) -> int:
    """Position of the value's kind in Firestore's cross-kind order. InvalidArgument for the expression kinds
    (field references, functions, pipelines) that only pipelines may use and no document can hold."""
    k = kind(v)
    if k not in _RANK_OF_KIND:
        raise InvalidArgument(f"A value of kind {k} cannot be stored or compared.")
    if k == "map_value" and is_vector(v):
        return VECTOR
    return _RANK_OF_KIND[k]


def is_vector(v: ValuePb) -> bool:
    """A map of the shape the client writes for `Vector`: {"__type__": "__vector__", "value": [...]}."""
    fields = v.map_value.fields
    return "__type__" in fields and fields["__type__"].string_value == "__vector__"


def is_nan(v: ValuePb) -> bool:
    return kind(v) == "double_value" and math.isnan(v.double_value)


def is_null(v: ValuePb) -> bool:
    return type_rank(v) == NULL


def is_number(v: ValuePb) -> bool:
    return kind(v) in ("integer_value", "double_value")


def number(v: ValuePb) -> int | float:
    return v.integer_value if kind(v) == "integer_value" else v.double_value


def _cmp(a, b) -> int:
    return (a > b) - (a < b)


def _compare_numbers(a: int | float, b: int | float) -> int:
    # Python compares int with float exactly (no rounding of large integers), which is what the order needs.
    a_nan = isinstance(a, float) and math.isnan(a)
    b_nan = isinstance(b, float) and math.isnan(b)
    if a_nan or b_nan:
        return _cmp(not a_nan, not b_nan)  # NaN is below every number and equal to itself
    return _cmp(a, b)


def _utf8(s: str) -> bytes:
    # Production orders strings by their UTF-8 bytes. That equals code point order, but not UTF-16 order
    # (U+FFFF sorts below U+1F600 here, above it in UTF-16), so we compare the encoded bytes to say so plainly.
    return s.encode("utf-8", "surrogatepass")


def _segment_key(segment: str) -> tuple:
    """Numeric IDs (`__id<int64>__`) sort before every other segment, by number; the rest by UTF-8 bytes.
    The client relies on this: `recursive()` bounds a collection with `__id-9223372036854775808__`."""
    number = paths.numeric_id(segment)
    return (1, _utf8(segment)) if number is None else (0, number)


def _reference_key(name: str) -> tuple:
    return tuple(_segment_key(s) for s in name.split("/"))


def _compare_references(a: str, b: str) -> int:
    return _cmp(_reference_key(a), _reference_key(b))


def _compare_maps(a, b) -> int:
    a_keys = sorted(a, key=_utf8)
    b_keys = sorted(b, key=_utf8)
    for x, y in zip(a_keys, b_keys):
        c = _cmp(_utf8(x), _utf8(y)) or compare(a[x], b[y])
        if c:
            return c
    return _cmp(len(a_keys), len(b_keys))


def compare(a: ValuePb, b: ValuePb) -> int:
    """Firestore's total order: -1, 0 or 1."""
    rank = type_rank(a)
    c = _cmp(rank, type_rank(b))
    if c or rank == NULL:
        return c
    if rank == BOOLEAN:
        return _cmp(a.boolean_value, b.boolean_value)
    if rank == NUMBER:
        return _compare_numbers(number(a), number(b))
    if rank == TIMESTAMP:
        ta, tb = a.timestamp_value, b.timestamp_value
        return _cmp((ta.seconds, ta.nanos), (tb.seconds, tb.nanos))
    if rank == STRING:
        return _cmp(_utf8(a.string_value), _utf8(b.string_value))
    if rank == BYTES:
        return _cmp(a.bytes_value, b.bytes_value)
    if rank == REFERENCE:
        return _compare_references(a.reference_value, b.reference_value)
    if rank == GEO_POINT:
        ga, gb = a.geo_point_value, b.geo_point_value
        return _compare_numbers(ga.latitude, gb.latitude) or _compare_numbers(ga.longitude, gb.longitude)
    if rank == ARRAY:
        xs, ys = a.array_value.values, b.array_value.values
        for x, y in zip(xs, ys):
            c = compare(x, y)
            if c:
                return c
        return _cmp(len(xs), len(ys))
    if rank == VECTOR:
        xs, ys = _vector_elements(a), _vector_elements(b)
        return _cmp(len(xs), len(ys)) or next((c for c in map(compare, xs, ys) if c), 0)
    return _compare_maps(a.map_value.fields, b.map_value.fields)


def _vector_elements(v: ValuePb) -> list[ValuePb]:
    fields = v.map_value.fields
    return list(fields["value"].array_value.values) if "value" in fields else []


def equals(a: ValuePb, b: ValuePb) -> bool:
    """Value equality of filters and transforms: 1 == 1.0, -0.0 == 0.0, NaN == NaN, null == null."""
    return compare(a, b) == 0


def sort_key(v: ValuePb) -> tuple:
    """A key that Python orders exactly as `compare` does, for fast sorting: (rank, payload), where payloads
    of one rank are of one Python type (tuples compare element by element, then by length, like arrays)."""
    rank = type_rank(v)
    if rank == NULL:
        return (rank,)
    if rank == BOOLEAN:
        return (rank, v.boolean_value)
    if rank == NUMBER:
        n = number(v)
        return (rank, 0) if isinstance(n, float) and math.isnan(n) else (rank, 1, n)
    if rank == TIMESTAMP:
        return (rank, v.timestamp_value.seconds, v.timestamp_value.nanos)
    if rank == STRING:
        return (rank, _utf8(v.string_value))
    if rank == BYTES:
        return (rank, v.bytes_value)
    if rank == REFERENCE:
        return (rank, _reference_key(v.reference_value))
    if rank == GEO_POINT:
        g = v.geo_point_value
        return (rank, _float_key(g.latitude), _float_key(g.longitude))
    if rank == ARRAY:
        return (rank, tuple(sort_key(e) for e in v.array_value.values))
    if rank == VECTOR:
        elements = _vector_elements(v)
        return (rank, len(elements), tuple(sort_key(e) for e in elements))
    fields = v.map_value.fields
    return (rank, tuple(sorted((_utf8(k), sort_key(e)) for k, e in fields.items())))


def _float_key(x: float) -> tuple:
    return (0,) if math.isnan(x) else (1, x)


def describe(v: ValuePb) -> str:
    """A short text for error messages."""
    k = kind(v) or "null_value"
    return k.removesuffix("_value")
