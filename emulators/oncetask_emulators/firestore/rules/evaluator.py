"""Evaluate rule expressions: operators, member access, methods, user functions and document reads.

Errors are Python exceptions (EvalError): whatever raises makes its `allow` false, except where the language
absorbs it (`error && false` is false, `error || true` is true), as in production.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from ..protos import DocumentPb
from .builtins import DOCUMENT_FUNCTIONS, GLOBAL_FUNCTIONS, METHODS, NAMESPACE_FUNCTIONS
from .syntax import (
    Binary, Call, Expr, Ident, Index, IsType, ListExpr, Literal, MapExpr, Member, MethodCall, PathExpr, Slice,
    Ternary, Unary,
)
from .values import (
    Duration, EvalError, LooseFloat, LooseInt, Namespace, Path, RSet, Symbolic, Timestamp, Unknown, check_int,
    equals, fields_to_map, is_number, type_name,
)

MAX_CALL_DEPTH = 20
NAMESPACES = {name: Namespace(name) for name in NAMESPACE_FUNCTIONS}


@dataclass
class Reads:
    """Document reads a request's rules may make: `get()`/`exists()` see the database before the request,
    `getAfter()`/`existsAfter()` as if the request's writes were applied. Production bills these and caps
    them per request (10 for a single document, 20 for a batch or transaction)."""

    project: str
    database: str
    before: Callable[[str], DocumentPb | None]
    after: dict[str, DocumentPb | None] = field(default_factory=dict)
    limit: int = 10
    names: set[str] = field(default_factory=set)
    cache: dict[tuple[str, bool], object] = field(default_factory=dict)

    def resource(self, path: object, after: bool) -> object:
        """The resource at `path` (a map with data, id, __name__), or None when no document is there."""
        if not isinstance(path, Path):
            raise EvalError(f"get() and exists() need a path, got {type_name(path)}")
        segments = path.segments
        if len(segments) < 5 or segments[0] != "databases" or segments[2] != "documents" or len(segments) % 2 == 0:
            raise EvalError(f"{path} is not a document path of the form /databases/$(database)/documents/...")
        if segments[1] != self.database:
            raise EvalError(f"{path} is in another database than {self.database}")
        name = f"projects/{self.project}/databases/{self.database}/documents/{'/'.join(segments[3:])}"
        key = (name, after)
        if key in self.cache:
            return self.cache[key]
        if name not in self.names:
            if len(self.names) >= self.limit:
                raise EvalError(f"more than {self.limit} document reads in the rules of one request")
            self.names.add(name)
        doc = self.after[name] if after and name in self.after else self.before(name)
        value = resource_of(doc, path) if doc is not None else None
        self.cache[key] = value
        return value


def resource_of(doc: DocumentPb, path: Path | None = None) -> dict:
    """What `resource` (or `get()`) is for a stored document: its data, its ID and its full path."""
    if path is None:
        parts = doc.name.split("/")
        path = Path(tuple(parts[2:]))
    return {"data": fields_to_map(doc.fields), "id": path.segments[-1], "__name__": path}


class _Lazy:
    """A `let` binding, evaluated on first use (so an unused binding's error does not fail the function)."""

    __slots__ = ("expr", "env")

    def __init__(self, expr: Expr, env: dict):
        self.expr = expr
        self.env = env


class Evaluator:
    def __init__(self, reads: Reads):
        self.reads = reads
        self.depth = 0

    def eval(self, node: Expr, env: dict) -> object:
        return _DISPATCH[type(node)](self, node, env)

    def condition(self, node: Expr, env: dict) -> bool:
        """An allow condition: true only for the bool true; anything else (or an error) denies."""
        result = self.eval(node, env)
        if type(result) is not bool:
            raise EvalError(f"condition is a {type_name(result)}, not a bool")
        return result

    # -- leaves ---------------------------------------------------------------------------------------

    def _literal(self, node: Literal, env: dict) -> object:
        return node.value

    def _ident(self, node: Ident, env: dict) -> object:
        name = node.name
        if name in env:
            value = env[name]
            if type(value) is _Lazy:
                value = self.eval(value.expr, value.env)
                env[name] = value
            return value
        if name in NAMESPACES:
            return NAMESPACES[name]
        raise EvalError(f"unknown variable {name}")  # the checks make this unreachable

    def _list(self, node: ListExpr, env: dict) -> list:
        return [self.eval(item, env) for item in node.items]

    def _map(self, node: MapExpr, env: dict) -> dict:
        out = {}
        for k, v in node.entries:
            key = self.eval(k, env)
            if not isinstance(key, str):
                raise EvalError(f"map keys must be strings, got {type_name(key)}")
            out[key] = self.eval(v, env)
        return out

    def _path(self, node: PathExpr, env: dict) -> Path:
        segments: list[str] = []
        for s in node.segments:
            if isinstance(s, str):
                segments.append(s)
                continue
            value = self.eval(s, env)
            if isinstance(value, str):
                segments.append(value)
            elif isinstance(value, Path):
                segments.extend(value.segments)
            elif isinstance(value, int) and type(value) is not bool:
                segments.append(str(value))
            else:
                raise EvalError(f"a path variable must be a string or path, got {type_name(value)}")
        return Path(tuple(segments))

    # -- access -----------------------------------------------------------------------------------------

    def _member(self, node: Member, env: dict) -> object:
        return member(self.eval(node.target, env), node.name)

    def _index(self, node: Index, env: dict) -> object:
        target = self.eval(node.target, env)
        key = self.eval(node.index, env)
        if isinstance(target, Symbolic):
            if not isinstance(key, str):
                raise Unknown("index into a query-constrained value")
            return target.member(key)
        t = type(target)
        if t is dict:
            if not isinstance(key, str):
                raise EvalError(f"map index must be a string, got {type_name(key)}")
            return member(target, key)
        if t is list or t is str or t is Path:
            items = target.segments if t is Path else target  # type: ignore[union-attr]
            if not isinstance(key, int) or type(key) is bool:
                raise EvalError(f"{type_name(target)} index must be an int, got {type_name(key)}")
            if not 0 <= key < len(items):  # type: ignore[arg-type]
                raise EvalError(f"index {key} out of range for a {type_name(target)} of size {len(items)}")
            return items[key]  # type: ignore[index]
        raise EvalError(f"cannot index a {type_name(target)}")

    def _slice(self, node: Slice, env: dict) -> object:
        target = self.eval(node.target, env)
        start, end = self.eval(node.start, env), self.eval(node.end, env)
        if type(target) not in (list, str):
            raise EvalError(f"cannot take a range of a {type_name(target)}")
        for bound in (start, end):
            if not isinstance(bound, int) or type(bound) is bool:
                raise EvalError("range bounds must be ints")
        if not 0 <= start <= end <= len(target):  # type: ignore[operator,arg-type]
            raise EvalError(f"range [{start}:{end}] out of bounds for size {len(target)}")  # type: ignore[arg-type]
        return target[start:end]  # type: ignore[index,misc]

    def _method(self, node: MethodCall, env: dict) -> object:
        target = self.eval(node.target, env)
        args = [self.eval(a, env) for a in node.args]
        if type(target) is Namespace:
            table = NAMESPACE_FUNCTIONS[target.name]  # type: ignore[union-attr]
        elif isinstance(target, Symbolic):
            raise Unknown(f"{node.name}() of {target}")
        else:
            table = METHODS.get(type_name(target), {})
        entry = table.get(node.name)
        if entry is None:
            raise EvalError(f"{type_name(target)} has no method {node.name}()")
        arity, fn = entry
        if len(args) != arity:
            raise EvalError(f"{node.name}() takes {arity} argument(s), {len(args)} given")
        if type(target) is Namespace:
            return fn(*args)
        return fn(target, *args)

    def _call(self, node: Call, env: dict) -> object:
        declared = node.function
        if declared is not None:
            if self.depth >= MAX_CALL_DEPTH:
                raise EvalError(f"function calls nested deeper than {MAX_CALL_DEPTH}")
            inner = dict(env)
            for name, arg in zip(declared.params, node.args):
                inner[name] = self.eval(arg, env)
            for name, value in declared.lets:
                inner[name] = _Lazy(value, inner)
            self.depth += 1
            try:
                return self.eval(declared.body, inner)
            finally:
                self.depth -= 1
        args = [self.eval(a, env) for a in node.args]
        if node.name in DOCUMENT_FUNCTIONS:
            if any(isinstance(a, Symbolic) for a in args):
                raise Unknown(f"{node.name}() of a path the query does not fix")
            found = self.reads.resource(args[0], after=node.name.endswith("After"))
            if node.name.startswith("exists"):
                return found is not None
            if found is None:
                raise EvalError(f"{node.name}(): no document at {args[0]}")
            return found
        arity, fn = GLOBAL_FUNCTIONS[node.name]
        if any(isinstance(a, Symbolic) for a in args):
            raise Unknown(f"{node.name}() of a query-constrained value")
        return fn(*args)

    # -- operators -------------------------------------------------------------------------------------

    def _unary(self, node: Unary, env: dict) -> object:
        value = self.eval(node.operand, env)
        if node.op == "!":
            if type(value) is not bool:
                raise EvalError(f"! needs a bool, got {type_name(value)}")
            return not value
        if is_number(value):
            return check_int(-value) if isinstance(value, int) else -value  # type: ignore[operator]
        if type(value) is Duration:
            return Duration(-value.nanos)  # type: ignore[union-attr]
        raise EvalError(f"- needs a number, got {type_name(value)}")

    def _binary(self, node: Binary, env: dict) -> object:
        op = node.op
        if op == "&&":
            return self._logic(node, env, stop=False)
        if op == "||":
            return self._logic(node, env, stop=True)
        left = self.eval(node.left, env)
        right = self.eval(node.right, env)
        return _BINARY[op](left, right)

    def _logic(self, node: Binary, env: dict, stop: bool) -> bool:
        """`&&` (stop=False) and `||` (stop=True): the first operand equal to `stop` decides, even if the
        other is an error; otherwise both must be bools."""
        try:
            left = self.eval(node.left, env)
        except EvalError:
            right = self.eval(node.right, env)
            if right is stop:
                return stop
            raise
        if left is stop:
            return stop
        if type(left) is not bool:
            raise EvalError(f"{node.op} needs bools, got {type_name(left)}")
        right = self.eval(node.right, env)
        if type(right) is not bool:
            raise EvalError(f"{node.op} needs bools, got {type_name(right)}")
        return right

    def _ternary(self, node: Ternary, env: dict) -> object:
        condition = self.eval(node.condition, env)
        if type(condition) is not bool:
            raise EvalError(f"?: needs a bool condition, got {type_name(condition)}")
        return self.eval(node.then if condition else node.otherwise, env)

    def _is(self, node: IsType, env: dict) -> bool:
        value = self.eval(node.operand, env)
        wanted = node.type_name
        if isinstance(value, Symbolic):
            return value.is_type(wanted)
        if wanted == "number":
            return is_number(value)
        if type(value) in (LooseInt, LooseFloat) and wanted in ("int", "float"):
            raise Unknown("the query's equality filter does not fix whether the number is an int or a float")
        return type_name(value) == wanted


def member(target: object, name: str) -> object:
    if type(target) is dict:
        try:
            return target[name]  # type: ignore[index]
        except KeyError:
            raise EvalError(f"Property {name} is undefined on object.") from None
    if isinstance(target, Symbolic):
        return target.member(name)
    if target is None:
        raise EvalError(f"Null value error: cannot read property {name} of null.")
    raise EvalError(f"a {type_name(target)} has no property {name}")


# -- binary operators --------------------------------------------------------------------------------------

def _eq(a: object, b: object) -> bool:
    if isinstance(a, Symbolic):
        return a.compare("==", b, False)
    if isinstance(b, Symbolic):
        return b.compare("==", a, True)
    return equals(a, b)


def _ne(a: object, b: object) -> bool:
    if isinstance(a, Symbolic):
        return a.compare("!=", b, False)
    if isinstance(b, Symbolic):
        return b.compare("!=", a, True)
    return not equals(a, b)


def _ordering(op: str) -> Callable[[object, object], bool]:
    test = {"<": lambda c: c < 0, "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0}[op]

    def compare(a: object, b: object) -> bool:
        if isinstance(a, Symbolic):
            return a.compare(op, b, False)
        if isinstance(b, Symbolic):
            return b.compare(op, a, True)
        return test(order(a, b))

    return compare


def order(a: object, b: object) -> int:
    """-1, 0 or 1 for values of one orderable kind; EvalError for anything else."""
    if is_number(a) and is_number(b):
        pass
    elif type(a) is not type(b) or type(a) not in (str, bytes, Timestamp, Duration):
        raise EvalError(f"cannot compare {type_name(a)} with {type_name(b)}")
    if isinstance(a, (Timestamp, Duration)):
        a, b = a.nanos, b.nanos  # type: ignore[union-attr]
    return (a > b) - (a < b)  # type: ignore[operator]


def _in(item: object, container: object) -> bool:
    if isinstance(container, Symbolic):
        return container.contains(item)
    if isinstance(item, Symbolic):
        return item.compare("in", container, False)
    t = type(container)
    if t is list:
        return any(equals(item, x) for x in container)  # type: ignore[union-attr]
    if t is dict:
        if not isinstance(item, str):
            raise EvalError(f"map keys are strings; `in` got a {type_name(item)}")
        return item in container  # type: ignore[operator]
    if t is RSet:
        return item in container  # type: ignore[operator]
    raise EvalError(f"`in` needs a list, set or map, got {type_name(container)}")


def _arith_check(a: object, b: object, op: str) -> None:
    if isinstance(a, Symbolic) or isinstance(b, Symbolic):
        raise Unknown(f"{op} of a query-constrained value")


def _add(a: object, b: object) -> object:
    _arith_check(a, b, "+")
    if is_number(a) and is_number(b):
        return check_int(a + b) if isinstance(a, int) and isinstance(b, int) else float(a) + float(b)  # type: ignore
    ta, tb = type(a), type(b)
    if ta is str and tb is str:
        return a + b  # type: ignore[operator]
    if ta is list and tb is list:
        return a + b  # type: ignore[operator]
    if ta is Timestamp and tb is Duration:
        return Timestamp(a.nanos + b.nanos)  # type: ignore[union-attr]
    if ta is Duration and tb is Timestamp:
        return Timestamp(a.nanos + b.nanos)  # type: ignore[union-attr]
    if ta is Duration and tb is Duration:
        return Duration(a.nanos + b.nanos)  # type: ignore[union-attr]
    raise EvalError(f"cannot add {type_name(a)} and {type_name(b)}")


def _sub(a: object, b: object) -> object:
    _arith_check(a, b, "-")
    if is_number(a) and is_number(b):
        return check_int(a - b) if isinstance(a, int) and isinstance(b, int) else float(a) - float(b)  # type: ignore
    ta, tb = type(a), type(b)
    if ta is Timestamp and tb is Duration:
        return Timestamp(a.nanos - b.nanos)  # type: ignore[union-attr]
    if ta is Timestamp and tb is Timestamp:
        return Duration(a.nanos - b.nanos)  # type: ignore[union-attr]
    if ta is Duration and tb is Duration:
        return Duration(a.nanos - b.nanos)  # type: ignore[union-attr]
    raise EvalError(f"cannot subtract {type_name(b)} from {type_name(a)}")


def _mul(a: object, b: object) -> object:
    _arith_check(a, b, "*")
    if is_number(a) and is_number(b):
        return check_int(a * b) if isinstance(a, int) and isinstance(b, int) else float(a) * float(b)  # type: ignore
    raise EvalError(f"cannot multiply {type_name(a)} and {type_name(b)}")


def _div(a: object, b: object) -> object:
    _arith_check(a, b, "/")
    if is_number(a) and is_number(b):
        if isinstance(a, int) and isinstance(b, int):
            if b == 0:
                raise EvalError("division by zero")
            q = abs(a) // abs(b)  # integer division truncates toward zero
            return check_int(q if (a >= 0) == (b > 0) else -q)
        if b == 0:
            raise EvalError("division by zero")
        return float(a) / float(b)  # type: ignore[arg-type]
    raise EvalError(f"cannot divide {type_name(a)} by {type_name(b)}")


def _mod(a: object, b: object) -> object:
    _arith_check(a, b, "%")
    if isinstance(a, int) and isinstance(b, int) and type(a) is not bool and type(b) is not bool:
        if b == 0:
            raise EvalError("modulo by zero")
        r = abs(a) % abs(b)  # the sign of the dividend, as in C and CEL
        return r if a >= 0 else -r
    if is_number(a) and is_number(b):
        if b == 0:
            raise EvalError("modulo by zero")
        return math.fmod(float(a), float(b))  # type: ignore[arg-type]
    raise EvalError(f"cannot take {type_name(a)} modulo {type_name(b)}")


_BINARY: dict[str, Callable[[object, object], object]] = {
    "==": _eq, "!=": _ne, "<": _ordering("<"), "<=": _ordering("<="), ">": _ordering(">"),
    ">=": _ordering(">="), "in": _in, "+": _add, "-": _sub, "*": _mul, "/": _div, "%": _mod,
}

_DISPATCH: dict[type, Callable[[Evaluator, Expr, dict], object]] = {
    Literal: Evaluator._literal, Ident: Evaluator._ident, ListExpr: Evaluator._list, MapExpr: Evaluator._map,
    PathExpr: Evaluator._path, Member: Evaluator._member, Index: Evaluator._index, Slice: Evaluator._slice,
    MethodCall: Evaluator._method, Call: Evaluator._call, Unary: Evaluator._unary, Binary: Evaluator._binary,
    Ternary: Evaluator._ternary, IsType: Evaluator._is,
}
