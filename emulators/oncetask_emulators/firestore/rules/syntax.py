"""The syntax tree of a rules file: declarations (service, match, allow, function) and expressions.

Nodes are plain mutable dataclasses: the parser's checks annotate calls with what they resolve to, so the
evaluator never looks a name up by scope at request time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class RulesSyntaxError(Exception):
    """A rules file that cannot be loaded: where (line, column) and why. Loading fails loudly, never allows."""

    def __init__(self, message: str, line: int, column: int, file: str = "firestore.rules"):
        super().__init__(f"{file}:{line}:{column}: {message}")
        self.description = message
        self.line = line
        self.column = column
        self.file = file


# -- expressions -----------------------------------------------------------------------------------------

@dataclass(eq=False)
class Expr:
    line: int
    column: int


@dataclass(eq=False)
class Literal(Expr):
    value: Any


@dataclass(eq=False)
class Ident(Expr):
    name: str


@dataclass(eq=False)
class ListExpr(Expr):
    items: list[Expr]


@dataclass(eq=False)
class MapExpr(Expr):
    entries: list[tuple[Expr, Expr]]


@dataclass(eq=False)
class PathExpr(Expr):
    """`/databases/$(database)/documents/jobs/$(id)`: literal segments (str) and interpolated expressions."""

    segments: list[str | Expr]


@dataclass(eq=False)
class Member(Expr):
    target: Expr
    name: str


@dataclass(eq=False)
class Index(Expr):
    target: Expr
    index: Expr


@dataclass(eq=False)
class Slice(Expr):
    target: Expr
    start: Expr
    end: Expr


@dataclass(eq=False)
class Call(Expr):
    """`name(args)`: a user function (`function` set by the checks) or a global one (`function` None)."""

    name: str
    args: list[Expr]
    function: FunctionDecl | None = None


@dataclass(eq=False)
class MethodCall(Expr):
    target: Expr
    name: str
    args: list[Expr]


@dataclass(eq=False)
class Unary(Expr):
    op: str  # "!" or "-"
    operand: Expr


@dataclass(eq=False)
class Binary(Expr):
    op: str  # && || == != < <= > >= in + - * / %
    left: Expr
    right: Expr


@dataclass(eq=False)
class Ternary(Expr):
    condition: Expr
    then: Expr
    otherwise: Expr


@dataclass(eq=False)
class IsType(Expr):
    operand: Expr
    type_name: str


# -- declarations ----------------------------------------------------------------------------------------

@dataclass(eq=False)
class FunctionDecl:
    name: str
    params: list[str]
    lets: list[tuple[str, Expr]]
    body: Expr
    line: int
    column: int


@dataclass(eq=False)
class Allow:
    methods: tuple[str, ...]  # as written: read, write, get, list, create, update, delete
    condition: Expr | None  # None: `allow read;` (unconditional)
    line: int
    column: int


@dataclass(frozen=True)
class Segment:
    """One segment of a match path: a literal, a `{name}` wildcard, or a `{name=**}` recursive wildcard."""

    text: str
    kind: str  # "literal", "single" or "recursive"


@dataclass(eq=False)
class MatchBlock:
    segments: list[Segment]
    allows: list[Allow] = field(default_factory=list)
    functions: list[FunctionDecl] = field(default_factory=list)
    matches: list[MatchBlock] = field(default_factory=list)
    line: int = 0
    column: int = 0


@dataclass(eq=False)
class RulesFile:
    version: str  # "1" or "2"
    service: str
    functions: list[FunctionDecl]
    matches: list[MatchBlock]
    source: str
    file: str
