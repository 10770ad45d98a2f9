"""Vector values and nearest-neighbour search (`StructuredQuery.find_nearest`), exact rather than approximate.

A vector is the map the clients write for `Vector([...])` / `FieldValue.vector([...])`:
`{"__type__": "__vector__", "value": [doubles]}`. As production does (its API reference and the Node client's
system tests), a search
- first applies the query's own filters (the pre-filter) and scope, then ranks the documents whose field holds
  a vector of the query vector's dimension: any other value, a vector of another dimension or a missing field
  leaves a document out silently;
- ranks by EUCLIDEAN distance or COSINE distance (1 - cosine similarity, 0..2) ascending, or by DOT_PRODUCT
  descending (larger is more similar); `distance_threshold` keeps distance <= threshold (>= for DOT_PRODUCT);
- returns at most `limit` (1..1000) documents, each with its distance in `distance_result_field` if named
  (replacing a field of that name), before the query's projection;
- refuses cursors ("not supported for vector queries"), a query vector that is not a vector or has more than
  2048 dimensions, and a missing measure or limit, with INVALID_ARGUMENT.
Ties keep document-name order (production leaves their order unspecified). A COSINE distance to a zero vector
is undefined: such a document is left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from . import paths, values
from .errors import InvalidArgument
from .protos import DocumentPb, StructuredQueryPb, ValuePb

FindNearestPb = StructuredQueryPb.FindNearest
Measure = FindNearestPb.DistanceMeasure

VECTOR_TYPE = "__vector__"
MAX_DIMENSIONS = 2048
MAX_LIMIT = 1000


def vector_of(v: ValuePb | None) -> list[float] | None:
    """The elements of a well-formed vector value, else None (not a vector, or a malformed one)."""
    if v is None or not values.is_vector(v):
        return None
    fields = v.map_value.fields
    if set(fields) != {"__type__", "value"} or values.kind(fields["value"]) != "array_value":
        return None
    elements = fields["value"].array_value.values
    if not all(values.is_number(e) for e in elements):
        return None
    return [float(values.number(e)) for e in elements]


def validate_vector_value(v: ValuePb) -> None:
    """A vector written to a document: exactly `__type__` and a `value` array of doubles."""
    fields = v.map_value.fields
    if set(fields) != {"__type__", "value"} or values.kind(fields["value"]) != "array_value":
        raise InvalidArgument("A vector value must be a map of exactly '__type__' and a 'value' array of doubles.")
    if any(values.kind(e) != "double_value" for e in fields["value"].array_value.values):
        raise InvalidArgument("A vector value must contain only doubles.")


def validate_find_nearest(q: StructuredQueryPb) -> None:
    """INVALID_ARGUMENT for a find_nearest production refuses, naming the problem."""
    fn = q.find_nearest
    path = paths.parse_field_path(fn.vector_field.field_path)
    if path == (paths.NAME_FIELD,):
        raise InvalidArgument("Invalid find_nearest: vector_field cannot be __name__.")
    query_vector = vector_of(fn.query_vector) if fn.HasField("query_vector") else None
    if query_vector is None:
        raise InvalidArgument("Invalid find_nearest: query_vector must be a vector value.")
    if not 0 < len(query_vector) <= MAX_DIMENSIONS:
        raise InvalidArgument(
            f"Invalid find_nearest: query_vector has {len(query_vector)} dimensions; it must have 1 to "
            f"{MAX_DIMENSIONS}."
        )
    if fn.distance_measure not in (Measure.EUCLIDEAN, Measure.COSINE, Measure.DOT_PRODUCT):
        raise InvalidArgument("Invalid find_nearest: distance_measure must be EUCLIDEAN, COSINE or DOT_PRODUCT.")
    if not fn.HasField("limit") or not 0 < fn.limit.value <= MAX_LIMIT:
        given = fn.limit.value if fn.HasField("limit") else "none"
        raise InvalidArgument(f"Invalid find_nearest: limit must be between 1 and {MAX_LIMIT}, got {given}.")
    if fn.distance_result_field:
        for segment in paths.parse_field_path(fn.distance_result_field):
            paths.validate_field_name(segment)
    if q.HasField("start_at") or q.HasField("end_at"):
        raise InvalidArgument("Invalid find_nearest: cursors are not supported for vector queries.")


def nearest(fn: FindNearestPb, docs: Iterable[DocumentPb]) -> list[DocumentPb]:
    """The `fn.limit` documents nearest to the query vector, nearest first (`fn` assumed valid)."""
    target = vector_of(fn.query_vector)
    assert target is not None, "validate_find_nearest checks the query vector"
    path = paths.parse_field_path(fn.vector_field.field_path)
    measure = fn.distance_measure
    scored: list[tuple[float, DocumentPb]] = []
    for doc in docs:
        vector = vector_of(paths.get_field(doc.fields, path))
        if vector is None or len(vector) != len(target):
            continue
        d = distance(measure, vector, target)
        if math.isnan(d):
            continue
        if fn.HasField("distance_threshold") and not _within(measure, d, fn.distance_threshold.value):
            continue
        scored.append((d, doc))
    # Stable: equal distances keep the candidates' order (document names).
    scored.sort(key=lambda pair: -pair[0] if measure == Measure.DOT_PRODUCT else pair[0])
    found = []
    for d, doc in scored[: fn.limit.value]:
        if fn.distance_result_field:
            doc = _with_distance(doc, paths.parse_field_path(fn.distance_result_field), d)
        found.append(doc)
    return found


def distance(measure: int, a: list[float], b: list[float]) -> float:
    """The distance of two vectors of one dimension; NaN where it is undefined (COSINE with a zero vector)."""
    if measure == Measure.EUCLIDEAN:
        return math.dist(a, b)
    dot = sum(x * y for x, y in zip(a, b))  # IEEE: inf - inf is NaN (fsum would raise)
    if measure == Measure.DOT_PRODUCT:
        return dot
    norms = math.hypot(*a) * math.hypot(*b)
    return 1.0 - dot / norms if norms else math.nan


def _within(measure: int, d: float, threshold: float) -> bool:
    # DOT_PRODUCT grows with similarity, so its threshold is a lower bound; the others' an upper bound.
    return d >= threshold if measure == Measure.DOT_PRODUCT else d <= threshold


def _with_distance(doc: DocumentPb, path: tuple[str, ...], d: float) -> DocumentPb:
    out = DocumentPb()
    out.CopyFrom(doc)
    target = out.fields
    for segment in path[:-1]:
        if segment in target and values.kind(target[segment]) != "map_value":
            del target[segment]
        target = target[segment].map_value.fields  # creates the intermediate maps
    target[path[-1]].CopyFrom(ValuePb(double_value=d))
    return out
