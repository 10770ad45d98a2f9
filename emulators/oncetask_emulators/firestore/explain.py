"""Query explain (`explain_options` on RunQuery and RunAggregationQuery): the plan, and with `analyze` the stats.

What production answers, and the Python and Node clients' system tests check:
- without `analyze`: one response carrying `explain_metrics.plan_summary` and no documents or result;
- with `analyze`: the results as usual, the last response also carrying `explain_metrics` with the plan and
  `execution_stats` (results returned, execution duration, read operations, and `debug_stats` with
  `billing_details`, `documents_scanned`, `index_entries_scanned`);
- the plan names the index used as `{"query_scope": "Collection" | "Collection group", "properties":
  "(a ASC, __name__ ASC)"}`.

The emulator has no indexes: the plan names the composite index production would need for the query (equality
fields, then the query's normalized orders, then a vector field as `VECTOR<dimensions>`), which is what a
single-field or composite index production picks for the simple queries; for queries production serves by
merging several indexes the plan here still names one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from . import filters, paths, vectors
from .protos import Duration, ExplainMetricsPb, StructuredQueryPb

FieldOp = StructuredQueryPb.FieldFilter.Operator
UnaryOp = StructuredQueryPb.UnaryFilter.Operator

_EQUALITY_OPS = {FieldOp.EQUAL: "ASC", FieldOp.IN: "ASC", FieldOp.ARRAY_CONTAINS: "CONTAINS",
                 FieldOp.ARRAY_CONTAINS_ANY: "CONTAINS"}
_EQUALITY_UNARY = (UnaryOp.IS_NULL, UnaryOp.IS_NAN)
INDEX_ENTRIES_PER_AGGREGATION_READ = 1000  # production bills an aggregation one read per 1000 index entries


def index_properties(q: StructuredQueryPb, aggregated: Sequence[tuple[str, ...]] = ()) -> str:
    """The properties of the index serving `q`, as production writes them: `(a ASC, b DESC, __name__ ASC)`."""
    from .query import normalized_orders  # query imports the modules this one builds on

    fields: list[tuple[tuple[str, ...], str]] = []
    listed: set[tuple[str, ...]] = set()
    if q.HasField("where"):
        for leaf in filters.leaves(q.where):
            kind = leaf.WhichOneof("filter_type")
            if kind == "field_filter" and leaf.field_filter.op in _EQUALITY_OPS:
                path = paths.parse_field_path(leaf.field_filter.field.field_path)
                mode = _EQUALITY_OPS[leaf.field_filter.op]
            elif kind == "unary_filter" and leaf.unary_filter.op in _EQUALITY_UNARY:
                path, mode = paths.parse_field_path(leaf.unary_filter.field.field_path), "ASC"
            else:
                continue
            if path not in listed and path != (paths.NAME_FIELD,):
                fields.append((path, mode))
                listed.add(path)
    if q.HasField("find_nearest"):
        fields.append(((paths.NAME_FIELD,), "ASC"))
        target = vectors.vector_of(q.find_nearest.query_vector) or []
        fields.append((paths.parse_field_path(q.find_nearest.vector_field.field_path), f"VECTOR<{len(target)}>"))
    else:
        for path, direction in normalized_orders(q, aggregated):
            if path not in listed:
                fields.append((path, "ASC" if direction > 0 else "DESC"))
                listed.add(path)
    return "(" + ", ".join(f"{paths.format_field_path(path)} {mode}" for path, mode in fields) + ")"


def metrics(q: StructuredQueryPb, *, analyze: bool, aggregated: Sequence[tuple[str, ...]] = (),
            results_returned: int = 0, documents_scanned: int = 0, aggregation: bool = False,
            seconds: float = 0.0) -> ExplainMetricsPb:
    """ExplainMetrics for a query (or the nested query of an aggregation): the plan, and with `analyze` the
    execution stats of a run that returned `results_returned` results after reading `documents_scanned`."""
    out = ExplainMetricsPb()
    index = out.plan_summary.indexes_used.add()
    scope = "Collection group" if q.from_ and q.from_[0].all_descendants else "Collection"
    index.update({"query_scope": scope, "properties": index_properties(q, aggregated)})
    if not analyze:
        return out
    if aggregation:  # one result row; reads billed per batch of index entries, at least one
        reads = max(1, math.ceil(documents_scanned / INDEX_ENTRIES_PER_AGGREGATION_READ))
        documents_billable, index_entries_billable = 0, documents_scanned
    else:  # a document read per result; a query that returns nothing still costs one read
        reads = max(1, results_returned)
        documents_billable, index_entries_billable = results_returned, 0
    stats = out.execution_stats
    stats.results_returned = results_returned
    stats.read_operations = reads
    # A run is never reported as taking no time: production's clients check the duration is positive.
    stats.execution_duration.CopyFrom(Duration(nanos=max(1000, int(seconds * 1e9) % 1_000_000_000),
                                               seconds=int(seconds)))
    stats.debug_stats.update({
        "billing_details": {
            "documents_billable": str(documents_billable),
            "index_entries_billable": str(index_entries_billable),
            "small_ops": "0",
            "min_query_cost": "1" if not aggregation and results_returned == 0 else "0",
        },
        "documents_scanned": str(documents_scanned if not aggregation else 0),
        "index_entries_scanned": str(documents_scanned),
    })
    return out
