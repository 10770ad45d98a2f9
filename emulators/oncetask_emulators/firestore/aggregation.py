"""Aggregation queries: count (with up_to), sum and avg over the documents a StructuredQuery returns.

As production does (the client libraries' system tests against it show each point):
- sum and avg see only documents that have *every* summed or averaged field (of any type: a string there is
  skipped by the sum but the document still counts), so one missing field leaves a document out of all the
  aggregations of the request, count included;
- the nested query is ordered by those fields too (after its own orders, before `__name__`), so a `limit`
  takes the documents with the smallest values: `limit(12).sum("x")` sums the 12 smallest x;
- a sum of integers is exact while it fits 64 bits, else a double; any double makes IEEE-754 arithmetic, so
  an overflow is +/-infinity and inf - inf is NaN, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from . import filters, paths, values
from .errors import InvalidArgument
from .protos import DocumentPb, StructuredAggregationQueryPb

ValuePb = values.ValuePb

MAX_AGGREGATIONS = 5
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def run_aggregation(
    aq: StructuredAggregationQueryPb, parent: str, docs: Iterable[DocumentPb]
) -> dict[str, ValuePb]:
    """alias -> result for each aggregation, over the documents the nested query returns."""
    return aggregate(aq, parent, docs)[0]


def aggregate(
    aq: StructuredAggregationQueryPb, parent: str, docs: Iterable[DocumentPb]
) -> tuple[dict[str, ValuePb], int]:
    """(alias -> result, how many documents were aggregated)."""
    from .query import run_query  # query re-exports this module's functions, so import it late

    aliases = validate_aggregation(aq)
    unprojected = type(aq.structured_query)()
    unprojected.CopyFrom(aq.structured_query)
    unprojected.ClearField("select")  # a projection must not hide the summed field
    found = run_query(unprojected, parent, docs, aggregated=aggregated_fields(aq))
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
    return results, len(found)


def aggregated_fields(aq: StructuredAggregationQueryPb) -> list[tuple[str, ...]]:
    """The fields of the sum and avg aggregations, each once, in request order."""
    found: list[tuple[str, ...]] = []
    for a in aq.aggregations:
        operator = a.WhichOneof("operator")
        if operator in ("sum", "avg"):
            path = paths.parse_field_path(getattr(a, operator).field.field_path)
            if path not in found:
                found.append(path)
    return found


def total(numbers: list[int | float]) -> ValuePb:
    """Sum: an integer while every value is one and the sum fits in 64 bits, else a double (0 if empty)."""
    if all(isinstance(n, int) for n in numbers):
        exact = sum(numbers)
        if INT64_MIN <= exact <= INT64_MAX:
            return ValuePb(integer_value=exact)
    return ValuePb(double_value=_float_sum(numbers))


def average(numbers: list[int | float]) -> ValuePb:
    """Average as a double; null when no value is numeric."""
    if not numbers:
        return ValuePb(null_value=0)
    if all(isinstance(n, int) for n in numbers):
        return ValuePb(double_value=sum(numbers) / len(numbers))  # exact sum, one rounding
    return ValuePb(double_value=_float_sum(numbers) / len(numbers))


def _float_sum(numbers: list[int | float]) -> float:
    """The sum as a double: exactly rounded while that is finite (fsum), else IEEE-754's plain running sum,
    which gives +/-infinity on overflow and NaN for inf - inf, as production answers."""
    if all(isinstance(n, int) or math.isfinite(n) for n in numbers):
        try:
            return math.fsum(numbers)
        except OverflowError:  # a finite input whose exact sum is past the largest double
            pass
    result = 0.0
    for n in numbers:
        result += _to_float(n)
    return result


def _to_float(n: int | float) -> float:
    try:
        return float(n)
    except OverflowError:  # an integer too large for a double cannot come from int64 values, but never crash
        return math.copysign(math.inf, n)


def validate_aggregation(aq: StructuredAggregationQueryPb) -> list[str]:
    """The alias of each aggregation (defaults `field_1`, `field_2`... skipping names in use), or
    InvalidArgument naming what production rejects."""
    if not aq.HasField("structured_query"):
        raise InvalidArgument("Invalid aggregation query: structured_query is required.")
    if not aq.aggregations:
        raise InvalidArgument("Aggregations can not be empty: an aggregation query needs count, sum or avg.")
    if len(aq.aggregations) > MAX_AGGREGATIONS:
        raise InvalidArgument(
            f"Invalid aggregation query: at most {MAX_AGGREGATIONS} aggregations are allowed, "
            f"got {len(aq.aggregations)}."
        )
    given = [a.alias for a in aq.aggregations if a.alias]
    if len(set(given)) != len(given):
        duplicate = next(alias for alias in given if given.count(alias) > 1)
        raise InvalidArgument(f"Aggregation aliases contain duplicate alias {duplicate!r}.")
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
