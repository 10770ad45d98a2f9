"""Aggregation queries: count (with up_to), sum and avg over the documents a StructuredQuery returns."""

from __future__ import annotations

import math
from collections.abc import Iterable

from google.cloud.firestore_v1.types import document, query

from . import filters, paths, values
from .errors import InvalidArgument

ValuePb = values.ValuePb
DocumentPb = document.Document.pb()
StructuredAggregationQueryPb = query.StructuredAggregationQuery.pb()

MAX_AGGREGATIONS = 5
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def run_aggregation(
    aq: StructuredAggregationQueryPb, parent: str, docs: Iterable[DocumentPb]
) -> dict[str, ValuePb]:
    """alias -> result for each aggregation, over the documents the nested query returns."""
    from .query import run_query  # query re-exports this function, so import it late

    aliases = validate_aggregation(aq)
    unprojected = type(aq.structured_query)()
    unprojected.CopyFrom(aq.structured_query)
    unprojected.ClearField("select")  # a projection must not hide the summed field
    found = run_query(unprojected, parent, docs)
    results: dict[str, ValuePb] = {}
    for alias, aggregation in zip(aliases, aq.aggregations):
        operator = aggregation.WhichOneof("operator")
        if operator == "count":
            count = len(found)
            if aggregation.count.HasField("up_to"):
                count = min(count, aggregation.count.up_to.value)
            results[alias] = ValuePb(integer_value=count)
        else:
            path = paths.parse_field_path(getattr(aggregation, operator).field.field_path)
            numbers = [values.number(v) for v in (filters.field_value(d, path) for d in found)
                       if v is not None and values.is_number(v)]
            results[alias] = total(numbers) if operator == "sum" else average(numbers)
    return results


def total(numbers: list[int | float]) -> ValuePb:
    """Sum: an integer while every value is one and the sum fits in 64 bits, else a double (0 if empty)."""
    if all(isinstance(n, int) for n in numbers):
        exact = sum(numbers)
        if INT64_MIN <= exact <= INT64_MAX:
            return ValuePb(integer_value=exact)
    return ValuePb(double_value=math.fsum(float(n) for n in numbers) if _finite(numbers) else _ieee_sum(numbers))


def average(numbers: list[int | float]) -> ValuePb:
    """Average as a double; null when no value is numeric."""
    if not numbers:
        return ValuePb(null_value=0)
    if _finite(numbers):
        return ValuePb(double_value=math.fsum(float(n) for n in numbers) / len(numbers))
    return ValuePb(double_value=_ieee_sum(numbers) / len(numbers))


def _finite(numbers: list[int | float]) -> bool:
    return all(isinstance(n, int) or math.isfinite(n) for n in numbers)


def _ieee_sum(numbers: list[int | float]) -> float:
    # math.fsum raises on inf - inf; plain addition gives IEEE-754's NaN, as production documents.
    result = 0.0
    for n in numbers:
        result += float(n)
    return result


def validate_aggregation(aq: StructuredAggregationQueryPb) -> list[str]:
    """The alias of each aggregation (defaults `field_1`, `field_2`... skipping names in use), or
    InvalidArgument naming what production rejects."""
    if not aq.HasField("structured_query"):
        raise InvalidArgument("Invalid aggregation query: structured_query is required.")
    if not aq.aggregations:
        raise InvalidArgument("Invalid aggregation query: at least one aggregation is required.")
    if len(aq.aggregations) > MAX_AGGREGATIONS:
        raise InvalidArgument(
            f"Invalid aggregation query: at most {MAX_AGGREGATIONS} aggregations are allowed, "
            f"got {len(aq.aggregations)}."
        )
    given = [a.alias for a in aq.aggregations if a.alias]
    if len(set(given)) != len(given):
        duplicate = next(alias for alias in given if given.count(alias) > 1)
        raise InvalidArgument(f"Invalid aggregation query: duplicate alias {duplicate!r}.")
    for alias in given:
        paths.validate_field_name(alias)
    aliases, next_id = [], 1
    for a in aq.aggregations:
        operator = a.WhichOneof("operator")
        if operator is None:
            raise InvalidArgument("Invalid aggregation query: an aggregation needs count, sum or avg.")
        if operator == "count" and a.count.HasField("up_to") and a.count.up_to.value <= 0:
            raise InvalidArgument("Invalid aggregation query: count up_to must be greater than zero.")
        if operator in ("sum", "avg"):
            path = paths.parse_field_path(getattr(a, operator).field.field_path)
            if path == (paths.NAME_FIELD,):
                raise InvalidArgument(f"Invalid aggregation query: cannot {operator} over __name__.")
        if a.alias:
            aliases.append(a.alias)
            continue
        while f"field_{next_id}" in given:
            next_id += 1
        aliases.append(f"field_{next_id}")
        next_id += 1
    return aliases
