"""StructuredQuery over a set of candidate documents: scope, filters, order, cursors, offset, limit, projection.

The order is the one production uses and the client relies on when it builds cursors from snapshots: the
explicit orders, then each inequality field not already ordered (lexicographically, `__name__` last), then
`__name__`, the implicit ones in the direction of the last explicit order. An aggregation adds its summed and
averaged fields before `__name__` (see aggregation.py). A `find_nearest` query ranks by vector distance
instead (see vectors.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from . import filters, paths, values, vectors
from .errors import InvalidArgument
from .protos import CursorPb, DocumentPb, StructuredQueryPb

ValuePb = values.ValuePb
Direction = StructuredQueryPb.Direction

Order = tuple[tuple[str, ...], int]  # (field path, +1 ascending / -1 descending)
NAME_PATH = (paths.NAME_FIELD,)


def run_query(q: StructuredQueryPb, parent: str, docs: Iterable[DocumentPb],
              aggregated: Sequence[tuple[str, ...]] = ()) -> list[DocumentPb]:
    """The documents `q` returns under `parent`, in result order, projected. `aggregated`: the fields an
    aggregation sums or averages, which the documents must have and are ordered by."""
    validate_query(q)
    selector = q.from_[0]
    has_where = q.HasField("where")
    if q.HasField("find_nearest"):
        # The where clause is a pre-filter; the vector distance supersedes any order_by.
        scoped = sorted(
            (doc for doc in docs
             if in_scope(doc.name, parent, selector.collection_id, selector.all_descendants)
             and (not has_where or filters.matches(q.where, doc))),
            key=lambda doc: values.sort_key(ValuePb(reference_value=doc.name)),  # ties keep name order
        )
        return _page(q, vectors.nearest(q.find_nearest, scoped))
    orders = normalized_orders(q, aggregated)
    found = [
        doc for doc in docs
        if in_scope(doc.name, parent, selector.collection_id, selector.all_descendants)
        and all(filters.field_value(doc, path) is not None for path, _ in orders)
        and (not has_where or filters.matches(q.where, doc))
    ]
    # Stable sorts from the last order to the first give the combined order, each in its own direction.
    for path, direction in reversed(orders):
        found.sort(key=lambda doc: values.sort_key(filters.field_value(doc, path)), reverse=direction < 0)
    if q.HasField("start_at"):
        found = [d for d in found if _after_start(_position(d, orders, q.start_at), q.start_at.before)]
    if q.HasField("end_at"):
        found = [d for d in found if _before_end(_position(d, orders, q.end_at), q.end_at.before)]
    return _page(q, found)


def _page(q: StructuredQueryPb, found: list[DocumentPb]) -> list[DocumentPb]:
    """Offset, limit and projection, the last steps of every query."""
    found = found[q.offset:]
    if q.HasField("limit"):
        found = found[: q.limit.value]
    if q.HasField("select") and q.select.fields:
        return [project(doc, [paths.parse_field_path(f.field_path) for f in q.select.fields]) for doc in found]
    return found


def in_scope(name: str, parent: str, collection_id: str, all_descendants: bool) -> bool:
    """Whether document `name` is in the collection `collection_id` directly under `parent` (or, for a
    collection group, at any depth under it). An empty collection ID with all_descendants means any."""
    if not name.startswith(parent + "/"):
        return False
    rest = name[len(parent) + 1:].split("/")
    if len(rest) % 2:
        return False
    if not all_descendants:
        return len(rest) == 2 and rest[0] == collection_id
    return not collection_id or rest[-2] == collection_id


def normalized_orders(q: StructuredQueryPb, aggregated: Sequence[tuple[str, ...]] = ()) -> list[Order]:
    """Explicit orders, then implicit inequality-field orders, then aggregated fields, then `__name__`."""
    orders: list[Order] = [
        (paths.parse_field_path(o.field.field_path), -1 if o.direction == Direction.DESCENDING else 1)
        for o in q.order_by
    ]
    last = orders[-1][1] if orders else 1
    ordered = {path for path, _ in orders}
    if q.HasField("where"):
        for path in filters.inequality_fields(q.where):
            if path not in ordered:
                orders.append((path, last))
                ordered.add(path)
    for path in aggregated:
        if path not in ordered:
            orders.append((path, last))
            ordered.add(path)
    if NAME_PATH not in ordered:
        orders.append((NAME_PATH, last))
    return orders


def _position(doc: DocumentPb, orders: list[Order], cursor: CursorPb) -> int:
    """Where `doc` is relative to the cursor: -1 before it, 0 at it, 1 after it (in result order)."""
    for (path, direction), bound in zip(orders, cursor.values):
        c = values.compare(filters.field_value(doc, path), bound)  # type: ignore[arg-type]
        if c:
            return c * direction
    return 0


def _after_start(position: int, before: bool) -> bool:
    # start_at with before=True includes the documents at the cursor (startAt); before=False excludes them.
    return position >= 0 if before else position > 0


def _before_end(position: int, before: bool) -> bool:
    # end_at with before=True stops before the cursor (endBefore); before=False includes it (endAt).
    return position < 0 if before else position <= 0


def project(doc: DocumentPb, selected: list[tuple[str, ...]]) -> DocumentPb:
    """`doc` with only the selected fields (a selection of just `__name__` keeps no field)."""
    out = DocumentPb(name=doc.name, create_time=doc.create_time, update_time=doc.update_time)
    for path in selected:
        if path == NAME_PATH:
            continue
        value = paths.get_field(doc.fields, path)
        if value is None:
            continue
        target = out.fields
        for segment in path[:-1]:
            target = target[segment].map_value.fields  # creates the intermediate maps
        target[path[-1]].CopyFrom(value)
    return out


def validate_query(q: StructuredQueryPb) -> None:
    """InvalidArgument for a query production would reject, naming the problem."""
    selectors = q.from_
    if len(selectors) != 1:
        raise InvalidArgument(
            f"Invalid query. A query must have exactly one collection selector, got {len(selectors)}."
        )
    selector = selectors[0]
    if selector.collection_id:
        paths.validate_document_id(selector.collection_id, "Collection ID")
    elif not selector.all_descendants:
        raise InvalidArgument("Invalid query. The collection ID must not be empty.")
    for f in q.select.fields:
        paths.parse_field_path(f.field_path)
    if q.HasField("where"):
        filters.validate_filter(q.where)
    for o in q.order_by:
        paths.parse_field_path(o.field.field_path)
        if o.direction not in (Direction.DIRECTION_UNSPECIFIED, Direction.ASCENDING, Direction.DESCENDING):
            raise InvalidArgument(f"Invalid query. Unknown order direction {o.direction}.")
    if q.offset < 0:
        raise InvalidArgument("Invalid query. offset must not be negative.")
    if q.HasField("limit") and q.limit.value < 0:
        raise InvalidArgument("Invalid query. limit must not be negative.")
    if q.HasField("find_nearest"):
        vectors.validate_find_nearest(q)
        return
    orders = normalized_orders(q)
    for which in ("start_at", "end_at"):
        if q.HasField(which):
            _validate_cursor(getattr(q, which), orders, which)


def _validate_cursor(cursor: CursorPb, orders: list[Order], which: str) -> None:
    if len(cursor.values) > len(orders):
        raise InvalidArgument(
            f"Invalid query. Too many cursor values in {which}: {len(cursor.values)} values for {len(orders)} "
            "orderBy fields. The cursor values must match the orderBy() constraints of the query."
        )
    for (path, _), value in zip(orders, cursor.values):
        if path == NAME_PATH and values.kind(value) != "reference_value":
            raise InvalidArgument(
                f"Invalid query. The {which} cursor value for __name__ must be a document reference, got "
                f"{values.describe(value)}."
            )


# Aggregations are queries too; the server finds them here.
from .aggregation import aggregate, run_aggregation  # noqa: E402  (aggregation builds on run_query)

__all__ = ["run_query", "run_aggregation", "aggregate", "validate_query", "normalized_orders", "in_scope", "project"]
