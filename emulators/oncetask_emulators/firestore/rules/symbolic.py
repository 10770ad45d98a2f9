"""List rules against a query: "rules are not filters".

Production refuses a query if any document it *could* return would be denied, whatever the database holds.
So a list rule is evaluated once per conjunction of the query's filters (its disjunctive normal form: `in`
and `array-contains-any` split into one branch per value), with `resource` standing for any document the
branch can return:

- a field the branch fixes by equality (`owner == uid`, or one value of an `in`) is that value;
- a field under range, `!=`, `not-in`, `array-contains` or not-null filters supports the comparisons those
  filters prove (`resource.data.n > 3` under `n > 5`; `uid in resource.data.members` under
  `members array-contains uid`); and
- anything else about a document is Unknown, which denies unless the rule decides without it
  (`Unknown || true`, `Unknown && false`).

What is not proven is refused; see the README for what this covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import paths
from ..protos import StructuredQueryPb
from .evaluator import order
from .values import (
    EvalError, LooseFloat, LooseInt, Path, Symbolic, Unknown, equals, from_pb, path_of_name, type_name,
)

FieldOp = StructuredQueryPb.FieldFilter.Operator
UnaryOp = StructuredQueryPb.UnaryFilter.Operator
CompositeOp = StructuredQueryPb.CompositeFilter.Operator
FieldPath = tuple[str, ...]
NAME: FieldPath = (paths.NAME_FIELD,)

_RANGE_OPS = {FieldOp.LESS_THAN: "<", FieldOp.LESS_THAN_OR_EQUAL: "<=", FieldOp.GREATER_THAN: ">",
              FieldOp.GREATER_THAN_OR_EQUAL: ">="}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass
class Branch:
    """One conjunction of a query's filters: what every document it returns is known to satisfy."""

    equal: dict[FieldPath, object] = field(default_factory=dict)
    ranges: dict[FieldPath, list[tuple[str, object]]] = field(default_factory=dict)
    not_equal: dict[FieldPath, list[object]] = field(default_factory=dict)
    contains: dict[FieldPath, list[object]] = field(default_factory=dict)
    present: set[FieldPath] = field(default_factory=set)  # not null (and the field exists)

    def merged(self, other: Branch) -> Branch:
        out = Branch(dict(self.equal), {k: list(v) for k, v in self.ranges.items()},
                     {k: list(v) for k, v in self.not_equal.items()}, {k: list(v) for k, v in self.contains.items()},
                     set(self.present))
        out.equal.update(other.equal)
        for target, source in ((out.ranges, other.ranges), (out.not_equal, other.not_equal),
                               (out.contains, other.contains)):
            for k, v in source.items():
                target.setdefault(k, []).extend(v)
        out.present |= other.present
        return out


def branches(q: StructuredQueryPb) -> list[Branch]:
    """The query's filters in disjunctive normal form (the query core caps it at 30 branches)."""
    if not q.HasField("where"):
        return [Branch()]
    return _dnf(q.where)


def _dnf(f) -> list[Branch]:
    kind = f.WhichOneof("filter_type")
    if kind == "composite_filter":
        parts = [_dnf(inner) for inner in f.composite_filter.filters]
        if f.composite_filter.op == CompositeOp.OR:
            return [b for part in parts for b in part]
        out = [Branch()]
        for part in parts:
            out = [a.merged(b) for a in out for b in part]
        return out
    if kind == "field_filter":
        ff = f.field_filter
        path = paths.parse_field_path(ff.field.field_path)
        op = ff.op
        if op == FieldOp.EQUAL:
            return [Branch(equal={path: _query_value(ff.value, path)})]
        if op == FieldOp.IN:
            return [Branch(equal={path: _query_value(v, path)}) for v in ff.value.array_value.values]
        if op == FieldOp.ARRAY_CONTAINS:
            return [Branch(contains={path: [from_pb(ff.value)]}, present={path})]
        if op == FieldOp.ARRAY_CONTAINS_ANY:
            return [Branch(contains={path: [from_pb(v)]}, present={path}) for v in ff.value.array_value.values]
        if op == FieldOp.NOT_EQUAL:
            return [Branch(not_equal={path: [from_pb(ff.value)]}, present={path})]
        if op == FieldOp.NOT_IN:
            return [Branch(not_equal={path: [from_pb(v) for v in ff.value.array_value.values]}, present={path})]
        if op in _RANGE_OPS:
            return [Branch(ranges={path: [(_RANGE_OPS[op], from_pb(ff.value))]}, present={path})]
        return [Branch()]
    if kind == "unary_filter":
        uf = f.unary_filter
        path = paths.parse_field_path(uf.field.field_path)
        if uf.op == UnaryOp.IS_NULL:
            return [Branch(equal={path: None})]
        if uf.op == UnaryOp.IS_NAN:
            return [Branch(equal={path: float("nan")})]
        return [Branch(present={path})]  # IS_NOT_NULL, IS_NOT_NAN
    return [Branch()]


def _query_value(v, path: FieldPath) -> object:
    """An equality operand as the documents hold it. A stored 1.0 equals a filter's 1, so the number's int-
    or float-ness is not fixed; a `__name__` operand is the document's path."""
    value = from_pb(v)
    if path == NAME:
        return value if isinstance(value, Path) else path_of_name(str(value))
    if type(value) is int:
        return LooseInt(value)
    if type(value) is float:
        return LooseFloat(value)
    return value


class QueryResource(Symbolic):
    """`resource` in a list rule: any document the branch can return (never null)."""

    def __init__(self, branch: Branch):
        self.branch = branch

    def __repr__(self) -> str:
        return "a document the query may return"

    def member(self, name: str) -> object:
        name_value = self.branch.equal.get(NAME)
        if name == "data":
            return QueryField(self.branch, ())
        if name == "__name__" and isinstance(name_value, Path):
            return name_value
        if name == "id" and isinstance(name_value, Path):
            return name_value.segments[-1]
        if name in ("id", "__name__"):
            raise Unknown(f"resource.{name} is not fixed by the query")
        raise EvalError(f"Property {name} is undefined on object.")

    def compare(self, op: str, other: object, flipped: bool) -> bool:
        if other is None and op in ("==", "!="):
            return op == "!="
        raise Unknown("a document compared as a whole")

    def is_type(self, name: str) -> bool:
        return name == "map"


class QueryField(Symbolic):
    """`resource.data.<path>` where the branch does not fix the value by equality."""

    def __init__(self, branch: Branch, path: FieldPath):
        self.branch = branch
        self.path = path

    def __repr__(self) -> str:
        return f"resource.data.{'.'.join(self.path)}" if self.path else "resource.data"

    def member(self, name: str) -> object:
        path = self.path + (name,)
        if path in self.branch.equal:
            return self.branch.equal[path]
        return QueryField(self.branch, path)

    def _known_present(self) -> bool:
        p = self.path
        return bool(p) and (p in self.branch.present or p in self.branch.ranges or p in self.branch.contains)

    def compare(self, op: str, other: object, flipped: bool) -> bool:
        if isinstance(other, Symbolic):
            raise Unknown(f"{self} compared with another value the query does not fix")
        if flipped:
            op = _MIRROR.get(op, op)
        if op in ("==", "!="):
            excluded = any(_same(other, v) for v in self.branch.not_equal.get(self.path, ()))
            if other is None and self._known_present():
                excluded = True
            if excluded:
                return op == "!="
            raise Unknown(f"the query does not fix {self}")
        if op in ("<", "<=", ">", ">="):
            for query_op, bound in self.branch.ranges.get(self.path, ()):
                if _implies(query_op, bound, op, other):
                    return True
            raise Unknown(f"the query's range on {self} does not prove {self} {op} {other!r}")
        raise Unknown(f"the query does not fix {self}")

    def contains(self, item: object) -> bool:
        if not isinstance(item, Symbolic) and any(_same(item, v) for v in self.branch.contains.get(self.path, ())):
            return True
        raise Unknown(f"the query does not prove {item!r} in {self}")

    def is_type(self, name: str) -> bool:
        if not self.path:
            return name == "map"
        if self.path in self.branch.contains:
            return name == "list"
        for _, bound in self.branch.ranges.get(self.path, ()):
            kind = type_name(bound)
            if kind in ("int", "float"):  # a range over numbers matches ints and doubles alike
                if name == "number":
                    return True
                raise Unknown(f"the query does not fix whether {self} is an int or a float")
            return kind == name
        raise Unknown(f"the query does not fix the type of {self}")


def _same(a: object, b: object) -> bool:
    try:
        return equals(a, b)
    except EvalError:
        return False


def _implies(query_op: str, bound: object, rule_op: str, value: object) -> bool:
    """Whether every x with `x query_op bound` (a Firestore range filter, which only matches values of the
    bound's kind) also satisfies `x rule_op value`."""
    try:
        c = order(bound, value)
    except EvalError:
        return False
    if rule_op in ("<", "<="):
        if query_op == "<":
            return c <= 0
        if query_op == "<=":
            return c < 0 or (c == 0 and rule_op == "<=")
        return False
    if query_op == ">":
        return c >= 0
    if query_op == ">=":
        return c > 0 or (c == 0 and rule_op == ">=")
    return False
