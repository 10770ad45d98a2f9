"""Query filters: does a document match a `where` clause, and is the clause one production accepts.

Matching follows production: a filter on a field leaves out documents that lack the field; range filters only
match values of the operand's kind and never NaN (NaN sorts below every number, but no range holds it: it is
reached only by IS_NAN); `!=`, `not-in` and IS_NOT_NAN also leave out null values; `not-in` with a null in its
list matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import paths, values
from .errors import InvalidArgument
from .protos import DocumentPb, StructuredQueryPb

ValuePb = values.ValuePb
FilterPb = StructuredQueryPb.Filter
FieldFilterPb = StructuredQueryPb.FieldFilter
FieldOp = StructuredQueryPb.FieldFilter.Operator
UnaryOp = StructuredQueryPb.UnaryFilter.Operator
CompositeOp = StructuredQueryPb.CompositeFilter.Operator

MAX_IN_VALUES = 30  # `in` and `array-contains-any`
MAX_NOT_IN_VALUES = 10
MAX_DISJUNCTIONS = 30  # in disjunctive normal form; `in` and `array-contains-any` count one per value

_RANGE = {
    FieldOp.LESS_THAN: lambda c: c < 0,
    FieldOp.LESS_THAN_OR_EQUAL: lambda c: c <= 0,
    FieldOp.GREATER_THAN: lambda c: c > 0,
    FieldOp.GREATER_THAN_OR_EQUAL: lambda c: c >= 0,
}
INEQUALITY_FIELD_OPS = frozenset([*_RANGE, FieldOp.NOT_EQUAL, FieldOp.NOT_IN])
INEQUALITY_UNARY_OPS = frozenset([UnaryOp.IS_NOT_NAN, UnaryOp.IS_NOT_NULL])
_LIST_OPS = {FieldOp.IN: MAX_IN_VALUES, FieldOp.ARRAY_CONTAINS_ANY: MAX_IN_VALUES, FieldOp.NOT_IN: MAX_NOT_IN_VALUES}


def field_value(doc: DocumentPb, path: tuple[str, ...]) -> ValuePb | None:
    """The value a query sees at `path`: `__name__` is the document's own reference."""
    if path == (paths.NAME_FIELD,):
        return ValuePb(reference_value=doc.name)
    return paths.get_field(doc.fields, path)


def matches(f: FilterPb, doc: DocumentPb) -> bool:
    """Whether `doc` satisfies the filter (assumed valid: see `validate_filter`)."""
    kind = f.WhichOneof("filter_type")
    if kind == "composite_filter":
        results = (matches(inner, doc) for inner in f.composite_filter.filters)
        return any(results) if f.composite_filter.op == CompositeOp.OR else all(results)
    if kind == "field_filter":
        ff = f.field_filter
        value = field_value(doc, paths.parse_field_path(ff.field.field_path))
        return value is not None and _field_op_matches(ff.op, value, ff.value)
    if kind == "unary_filter":
        uf = f.unary_filter
        value = field_value(doc, paths.parse_field_path(uf.field.field_path))
        return value is not None and _unary_matches(uf.op, value)
    return True  # an empty Filter message filters nothing


def _field_op_matches(op: int, value: ValuePb, operand: ValuePb) -> bool:
    if op in _RANGE:
        if values.is_nan(value) or values.is_nan(operand):
            return False
        return values.type_rank(value) == values.type_rank(operand) and _RANGE[op](values.compare(value, operand))
    if op == FieldOp.EQUAL:
        return values.equals(value, operand)
    if op == FieldOp.NOT_EQUAL:
        return not values.is_null(value) and not values.equals(value, operand)
    if op == FieldOp.IN:
        return any(values.equals(value, x) for x in operand.array_value.values)
    if op == FieldOp.NOT_IN:
        listed = operand.array_value.values
        if any(values.is_null(x) for x in listed):
            return False
        return not values.is_null(value) and not any(values.equals(value, x) for x in listed)
    if values.kind(value) != "array_value":
        return False
    if op == FieldOp.ARRAY_CONTAINS:
        return any(values.equals(e, operand) for e in value.array_value.values)
    if op == FieldOp.ARRAY_CONTAINS_ANY:
        wanted = operand.array_value.values
        return any(values.equals(e, x) for e in value.array_value.values for x in wanted)
    raise InvalidArgument(f"Unknown field filter operator {op}.")


def _unary_matches(op: int, value: ValuePb) -> bool:
    if op == UnaryOp.IS_NAN:
        return values.is_nan(value)
    if op == UnaryOp.IS_NULL:
        return values.is_null(value)
    if op == UnaryOp.IS_NOT_NAN:
        return not values.is_null(value) and not values.is_nan(value)
    if op == UnaryOp.IS_NOT_NULL:
        return not values.is_null(value)
    raise InvalidArgument(f"Unknown unary filter operator {op}.")


def leaves(f: FilterPb) -> Iterator[FilterPb]:
    """Every field and unary filter inside `f`, depth first."""
    if f.WhichOneof("filter_type") == "composite_filter":
        for inner in f.composite_filter.filters:
            yield from leaves(inner)
    elif f.WhichOneof("filter_type") is not None:
        yield f


def inequality_fields(f: FilterPb) -> list[tuple[str, ...]]:
    """Fields under an inequality, each once, in the order production adds them as implicit orders:
    lexicographic by field path (segment by segment), whatever the order of the filters, except `__name__`,
    which comes last (the SDKs' system tests against production check both)."""
    found: set[tuple[str, ...]] = set()
    for leaf in leaves(f):
        if leaf.WhichOneof("filter_type") == "field_filter" and leaf.field_filter.op in INEQUALITY_FIELD_OPS:
            found.add(paths.parse_field_path(leaf.field_filter.field.field_path))
        if leaf.WhichOneof("filter_type") == "unary_filter" and leaf.unary_filter.op in INEQUALITY_UNARY_OPS:
            found.add(paths.parse_field_path(leaf.unary_filter.field.field_path))
    name = (paths.NAME_FIELD,)
    return sorted(found - {name}) + ([name] if name in found else [])


def validate_filter(f: FilterPb) -> None:
    """InvalidArgument for a filter production rejects, naming the problem."""
    _validate(f)
    ops = [leaf.field_filter.op for leaf in leaves(f) if leaf.WhichOneof("filter_type") == "field_filter"]
    if ops.count(FieldOp.NOT_IN) > 1:
        raise InvalidArgument("Invalid query. You cannot use more than one 'NOT_IN' filter.")
    if FieldOp.NOT_IN in ops and FieldOp.NOT_EQUAL in ops:
        raise InvalidArgument("Invalid query. You cannot use 'NOT_IN' filters with 'NOT_EQUAL' filters.")
    count = disjunctions(f)
    if count > MAX_DISJUNCTIONS:
        raise InvalidArgument(
            f"Invalid query. The filter has {count} disjunctions in disjunctive normal form; "
            f"the maximum is {MAX_DISJUNCTIONS}."
        )


def disjunctions(f: FilterPb) -> int:
    """How many conjunctions the filter has in disjunctive normal form (what production limits)."""
    kind = f.WhichOneof("filter_type")
    if kind == "composite_filter":
        counts = [disjunctions(inner) for inner in f.composite_filter.filters]
        if f.composite_filter.op == CompositeOp.OR:
            return sum(counts)
        product = 1
        for c in counts:
            product *= c
        return product
    if kind == "field_filter" and f.field_filter.op in (FieldOp.IN, FieldOp.ARRAY_CONTAINS_ANY):
        return max(1, len(f.field_filter.value.array_value.values))
    return 1


def _validate(f: FilterPb) -> None:
    kind = f.WhichOneof("filter_type")
    if kind == "composite_filter":
        cf = f.composite_filter
        if cf.op not in (CompositeOp.AND, CompositeOp.OR):
            raise InvalidArgument("Invalid query. A composite filter needs an operator (AND or OR).")
        if not cf.filters:
            raise InvalidArgument("Invalid query. A composite filter must contain at least one filter.")
        for inner in cf.filters:
            _validate(inner)
    elif kind == "field_filter":
        _validate_field_filter(f.field_filter)
    elif kind == "unary_filter":
        uf = f.unary_filter
        if uf.op not in (UnaryOp.IS_NAN, UnaryOp.IS_NULL, UnaryOp.IS_NOT_NAN, UnaryOp.IS_NOT_NULL):
            raise InvalidArgument(f"Invalid query. Unary filter on {uf.field.field_path!r} has no valid operator.")
        paths.parse_field_path(uf.field.field_path)


def _validate_field_filter(ff: FieldFilterPb) -> None:
    path = paths.parse_field_path(ff.field.field_path)
    if ff.op not in FieldOp.values() or ff.op == FieldOp.OPERATOR_UNSPECIFIED:
        raise InvalidArgument(f"Invalid query. Filter on {ff.field.field_path!r} has no valid operator.")
    name = FieldOp.Name(ff.op)
    if ff.op in _LIST_OPS:
        if values.kind(ff.value) != "array_value":
            raise InvalidArgument(f"Invalid query. A '{name}' filter requires an array value.")
        count = len(ff.value.array_value.values)
        if count == 0:
            raise InvalidArgument(f"Invalid query. A non-empty array is required for '{name}' filters.")
        if count > _LIST_OPS[ff.op]:
            raise InvalidArgument(
                f"Invalid query. '{name}' filters support a maximum of {_LIST_OPS[ff.op]} elements in the value "
                f"array, got {count}."
            )
    if path == (paths.NAME_FIELD,):
        if ff.op in (FieldOp.ARRAY_CONTAINS, FieldOp.ARRAY_CONTAINS_ANY):
            raise InvalidArgument(f"Invalid query. '{name}' cannot be used on __name__.")
        operands = ff.value.array_value.values if ff.op in _LIST_OPS else [ff.value]
        for operand in operands:
            if values.kind(operand) != "reference_value":
                raise InvalidArgument(
                    f"Invalid query. __name__ filter value must be a document reference, got "
                    f"{values.describe(operand)}."
                )
