"""Load-time checks: every name resolves, every call has the right arity, no function is recursive.

Production refuses such rules when they are deployed; refusing them here, with a line and column, keeps a
typo from turning silently into a denied (or, worse, a wrongly allowed) request at run time. Calls to user
functions are annotated with the declaration they resolve to (innermost scope first).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .builtins import ALL_METHOD_NAMES, DOCUMENT_FUNCTIONS, GLOBAL_FUNCTIONS, GLOBAL_VARIABLES, NAMESPACE_FUNCTIONS
from .syntax import (
    Binary, Call, Expr, FunctionDecl, Ident, Index, IsType, ListExpr, Literal, MapExpr, MatchBlock, Member,
    MethodCall, PathExpr, RulesFile, RulesSyntaxError, Slice, Ternary, Unary,
)


@dataclass
class Scope:
    variables: frozenset[str]
    functions: dict[str, FunctionDecl]
    parent: Scope | None

    def function(self, name: str) -> FunctionDecl | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.functions:
                return scope.functions[name]
            scope = scope.parent
        return None


def check(rules: RulesFile) -> None:
    root = _scope(rules.functions, frozenset(GLOBAL_VARIABLES), None, rules.file)
    for f in rules.functions:
        _check_function(f, root, rules.file)
    for block in rules.matches:
        _check_match(block, root, rules)
    _check_no_recursion(rules)


def _scope(functions: list[FunctionDecl], variables: frozenset[str], parent: Scope | None, file: str) -> Scope:
    table: dict[str, FunctionDecl] = {}
    for f in functions:
        if f.name in table:
            raise RulesSyntaxError(f"function {f.name} is declared twice in the same block", f.line, f.column, file)
        if f.name in GLOBAL_FUNCTIONS or f.name in DOCUMENT_FUNCTIONS:
            raise RulesSyntaxError(f"function {f.name} would hide the built-in {f.name}()", f.line, f.column, file)
        table[f.name] = f
    return Scope(variables, table, parent)


def _check_match(block: MatchBlock, parent: Scope, rules: RulesFile) -> None:
    names = [s.text for s in block.segments if s.kind != "literal"]
    recursive = [i for i, s in enumerate(block.segments) if s.kind == "recursive"]
    if len(set(names)) != len(names):
        raise RulesSyntaxError("a match path names the same wildcard twice", block.line, block.column, rules.file)
    if len(recursive) > 1:
        raise RulesSyntaxError("a match path may hold at most one {name=**} wildcard", block.line, block.column,
                               rules.file)
    if rules.version == "1" and recursive and recursive[0] != len(block.segments) - 1:
        raise RulesSyntaxError("with rules_version '1' a {name=**} wildcard must be the last segment "
                               "(declare rules_version = '2' for other positions)", block.line, block.column,
                               rules.file)
    scope = _scope(block.functions, parent.variables | frozenset(names), parent, rules.file)
    for f in block.functions:
        _check_function(f, scope, rules.file)
    for allow in block.allows:
        if allow.condition is not None:
            _check_expr(allow.condition, scope, scope.variables, rules.file)
    for inner in block.matches:
        _check_match(inner, scope, rules)


def _check_function(f: FunctionDecl, scope: Scope, file: str) -> None:
    if len(set(f.params)) != len(f.params):
        raise RulesSyntaxError(f"function {f.name} names a parameter twice", f.line, f.column, file)
    variables = scope.variables | frozenset(f.params)
    for name, value in f.lets:
        _check_expr(value, scope, variables, file)
        variables = variables | {name}
    _check_expr(f.body, scope, variables, file)


def _check_expr(e: Expr, scope: Scope, variables: frozenset[str], file: str) -> None:
    for node in _walk(e):
        if isinstance(node, Ident) and node.name not in variables:
            raise RulesSyntaxError(f"unknown variable '{node.name}'", node.line, node.column, file)
        if isinstance(node, Call):
            _resolve_call(node, scope, file)
        if isinstance(node, MethodCall):
            target = node.target
            if isinstance(target, Ident) and target.name in NAMESPACE_FUNCTIONS:
                table = NAMESPACE_FUNCTIONS[target.name]
                if node.name not in table:
                    raise RulesSyntaxError(f"{target.name}.{node.name}() is not a function this emulator knows",
                                           node.line, node.column, file)
                _arity(f"{target.name}.{node.name}", table[node.name][0], node, file)
            elif node.name not in ALL_METHOD_NAMES:
                raise RulesSyntaxError(f"unknown method {node.name}()", node.line, node.column, file)


def _resolve_call(node: Call, scope: Scope, file: str) -> None:
    declared = scope.function(node.name)
    if declared is not None:
        node.function = declared
        _arity(node.name, len(declared.params), node, file)
    elif node.name in GLOBAL_FUNCTIONS:
        _arity(node.name, GLOBAL_FUNCTIONS[node.name][0], node, file)
    elif node.name in DOCUMENT_FUNCTIONS:
        _arity(node.name, DOCUMENT_FUNCTIONS[node.name], node, file)
    else:
        raise RulesSyntaxError(f"function {node.name}() is not declared", node.line, node.column, file)


def _arity(name: str, expected: int, node: Call | MethodCall, file: str) -> None:
    if len(node.args) != expected:
        raise RulesSyntaxError(f"{name}() takes {expected} argument(s), {len(node.args)} given", node.line,
                               node.column, file)


def _walk(e: Expr) -> Iterator[Expr]:
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (Literal, Ident)):
            continue
        if isinstance(node, ListExpr):
            stack.extend(node.items)
        elif isinstance(node, MapExpr):
            for k, v in node.entries:
                stack.extend((k, v))
        elif isinstance(node, PathExpr):
            stack.extend(s for s in node.segments if isinstance(s, Expr))
        elif isinstance(node, Member):
            stack.append(node.target)
        elif isinstance(node, Index):
            stack.extend((node.target, node.index))
        elif isinstance(node, Slice):
            stack.extend((node.target, node.start, node.end))
        elif isinstance(node, Call):
            stack.extend(node.args)
        elif isinstance(node, MethodCall):
            stack.append(node.target)
            stack.extend(node.args)
        elif isinstance(node, Unary):
            stack.append(node.operand)
        elif isinstance(node, Binary):
            stack.extend((node.left, node.right))
        elif isinstance(node, Ternary):
            stack.extend((node.condition, node.then, node.otherwise))
        elif isinstance(node, IsType):
            stack.append(node.operand)


def _calls(f: FunctionDecl) -> Iterator[FunctionDecl]:
    for expr in [*(v for _, v in f.lets), f.body]:
        for node in _walk(expr):
            if isinstance(node, Call) and node.function is not None:
                yield node.function


def _check_no_recursion(rules: RulesFile) -> None:
    declared: list[FunctionDecl] = []

    def collect(functions: list[FunctionDecl], blocks: list[MatchBlock]) -> None:
        declared.extend(functions)
        for b in blocks:
            collect(b.functions, b.matches)

    collect(rules.functions, rules.matches)
    done: set[int] = set()

    def visit(f: FunctionDecl, path: list[FunctionDecl]) -> None:
        if any(g is f for g in path):
            cycle = " -> ".join(g.name for g in [*path[path.index(f):], f])
            raise RulesSyntaxError(f"recursive function calls are not allowed: {cycle}", f.line, f.column, rules.file)
        if id(f) in done:
            return
        for callee in _calls(f):
            visit(callee, [*path, f])
        done.add(id(f))

    for f in declared:
        visit(f, [])
