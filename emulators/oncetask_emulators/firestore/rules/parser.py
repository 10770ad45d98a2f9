"""Parse a Firestore rules file into a syntax tree; anything outside the supported subset is an error here.

A hand-written recursive-descent parser over an on-demand lexer: path literals (`/databases/$(d)/...`) and
match paths (`/jobs/{id}`) are scanned as raw text at the point the grammar expects them, which is the only
way to tell a path's `/` from division and a wildcard's `{` from a block.

Expression precedence, lowest first: `?:`, `||`, `&&`, relations (`== != < <= > >= in is`), `+ -`,
`* / %`, unary `! -`, then member access, indexing, slicing and calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .syntax import (
    Allow, Binary, Call, Expr, FunctionDecl, Ident, Index, IsType, ListExpr, Literal, MapExpr, MatchBlock,
    Member, MethodCall, PathExpr, RulesFile, RulesSyntaxError, Segment, Slice, Ternary, Unary,
)

METHODS = ("read", "write", "get", "list", "create", "update", "delete")
TYPE_NAMES = (
    "bool", "bytes", "duration", "float", "int", "latlng", "list", "map", "map_diff", "number", "path", "set",
    "string", "timestamp",
)
_KEYWORDS = {"true", "false", "null", "in", "is", "if", "allow", "match", "function", "return", "let", "service"}
_OPERATORS = ("&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "%", "?", ":", ".", ",",
              ";", "(", ")", "[", "]", "{", "}", "=")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(\d+\.\d*([eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+([eE][+-]?\d+)?|0[xX][0-9a-fA-F]+|\d+)")
# A literal path segment; `(default)` (the default database's ID) is literal text, as in production's docs.
_PATH_LITERAL = re.compile(r"\([A-Za-z0-9_\-~%@+.]*\)|[A-Za-z0-9_\-~%@+]+")
_MATCH_LITERAL = re.compile(r"[^/\s{}]+")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "/": "/", "b": "\b", "f": "\f",
            "0": "\0"}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class Token:
    kind: str  # "ident", "int", "float", "string", "op", "eof"
    text: str
    value: object
    start: int
    end: int


class Lexer:
    def __init__(self, source: str, file: str):
        self.source = source
        self.file = file
        self.pos = 0
        self._peeked: Token | None = None
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]

    def where(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self._line_starts[lo] + 1

    def error(self, message: str, offset: int) -> RulesSyntaxError:
        line, column = self.where(offset)
        return RulesSyntaxError(message, line, column, self.file)

    def reset(self, offset: int) -> None:
        self.pos = offset
        self._peeked = None

    def skip_space(self) -> None:
        src, n = self.source, len(self.source)
        while self.pos < n:
            c = src[self.pos]
            if c in " \t\r\n\f":
                self.pos += 1
            elif src.startswith("//", self.pos):
                end = src.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif src.startswith("/*", self.pos):
                end = src.find("*/", self.pos + 2)
                if end < 0:
                    raise self.error("unterminated comment", self.pos)
                self.pos = end + 2
            else:
                return

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> Token:
        token = self.peek()
        self._peeked = None
        self.pos = token.end
        return token

    def _scan(self) -> Token:
        saved = self.pos
        self.skip_space()
        start = self.pos
        self.pos = saved  # peeking does not move; next() does
        src = self.source
        if start >= len(src):
            return Token("eof", "end of file", None, start, start)
        c = src[start]
        if c.isalpha() or c == "_":
            m = _IDENT.match(src, start)
            assert m
            return Token("ident", m.group(), m.group(), start, m.end())
        if c.isdigit() or (c == "." and start + 1 < len(src) and src[start + 1].isdigit()):
            m = _NUMBER.match(src, start)
            assert m
            text = m.group()
            if text[:2] in ("0x", "0X"):
                value: object = int(text, 16)
                kind = "int"
            elif any(ch in text for ch in ".eE"):
                value, kind = float(text), "float"
            else:
                value, kind = int(text), "int"
            if kind == "int" and not INT64_MIN <= value <= INT64_MAX:  # type: ignore[operator]
                raise self.error(f"integer literal {text} does not fit in 64 bits", start)
            end = m.end()
            if end < len(src) and (src[end].isalpha() or src[end] == "_"):
                raise self.error(f"unexpected character {src[end]!r} after number {text}", end)
            return Token(kind, text, value, start, end)
        if c in "'\"":
            return self._string(start)
        for op in _OPERATORS:
            if src.startswith(op, start):
                return Token("op", op, op, start, start + len(op))
        raise self.error(f"unexpected character {c!r}", start)

    def _string(self, start: int) -> Token:
        src, quote = self.source, self.source[start]
        i, chars = start + 1, []
        while True:
            if i >= len(src) or src[i] == "\n":
                raise self.error("unterminated string literal", start)
            c = src[i]
            if c == quote:
                return Token("string", src[start:i + 1], "".join(chars), start, i + 1)
            if c == "\\":
                if i + 1 >= len(src):
                    raise self.error("unterminated string literal", start)
                e = src[i + 1]
                if e == "u":
                    digits = src[i + 2:i + 6]
                    if not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
                        raise self.error("\\u needs four hex digits", i)
                    chars.append(chr(int(digits, 16)))
                    i += 6
                    continue
                if e not in _ESCAPES:
                    raise self.error(f"unknown escape \\{e} in string literal", i)
                chars.append(_ESCAPES[e])
                i += 2
                continue
            chars.append(c)
            i += 1


class Parser:
    def __init__(self, source: str, file: str):
        self.lex = Lexer(source, file)
        self.source = source
        self.file = file

    # -- helpers ------------------------------------------------------------------------------------------

    def error(self, message: str, token: Token | None = None) -> RulesSyntaxError:
        token = token or self.lex.peek()
        return self.lex.error(message, token.start)

    def at(self, text: str) -> bool:
        token = self.lex.peek()
        return token.kind in ("op", "ident") and token.text == text

    def accept(self, text: str) -> Token | None:
        if self.at(text):
            return self.lex.next()
        return None

    def expect(self, text: str, context: str) -> Token:
        token = self.lex.peek()
        if not self.at(text):
            raise self.error(f"expected '{text}' {context}, found {_describe(token)}")
        return self.lex.next()

    def ident(self, context: str) -> Token:
        token = self.lex.peek()
        if token.kind != "ident" or token.text in _KEYWORDS:
            raise self.error(f"expected a name {context}, found {_describe(token)}")
        return self.lex.next()

    def pos(self, token: Token) -> tuple[int, int]:
        return self.lex.where(token.start)

    # -- declarations -------------------------------------------------------------------------------------

    def parse_file(self) -> RulesFile:
        version = "1"
        if self.at("rules_version"):
            self.lex.next()
            self.expect("=", "after rules_version")
            token = self.lex.next()
            if token.kind != "string" or token.value not in ("1", "2"):
                raise self.error("rules_version must be '1' or '2'", token)
            version = str(token.value)
            self.accept(";")
        start = self.expect("service", "at the top level (only `rules_version` and one `service` block)")
        name_parts = [self.ident("after 'service'").text]
        while self.accept("."):
            name_parts.append(self.ident("in the service name").text)
        service = ".".join(name_parts)
        if service != "cloud.firestore":
            raise self.lex.error(f"unsupported service {service!r}: this emulator evaluates cloud.firestore rules",
                                 start.start)
        self.expect("{", "to open the service block")
        functions: list[FunctionDecl] = []
        matches: list[MatchBlock] = []
        while not self.at("}"):
            token = self.lex.peek()
            if self.at("function"):
                functions.append(self.function())
            elif self.at("match"):
                matches.append(self.match())
            elif self.at("allow"):
                raise self.error("'allow' must be inside a 'match' block")
            else:
                raise self.error(f"expected 'match' or 'function' in the service block, found {_describe(token)}")
        self.expect("}", "to close the service block")
        token = self.lex.peek()
        if token.kind != "eof":
            raise self.error(f"unexpected {_describe(token)} after the service block")
        return RulesFile(version, service, functions, matches, self.source, self.file)

    def match(self) -> MatchBlock:
        keyword = self.lex.next()
        line, column = self.pos(keyword)
        segments = self.match_path()
        self.expect("{", "to open the match block")
        block = MatchBlock(segments, line=line, column=column)
        while not self.at("}"):
            token = self.lex.peek()
            if self.at("allow"):
                block.allows.append(self.allow())
            elif self.at("match"):
                block.matches.append(self.match())
            elif self.at("function"):
                block.functions.append(self.function())
            else:
                raise self.error(f"expected 'allow', 'match' or 'function', found {_describe(token)}")
        self.expect("}", "to close the match block")
        return block

    def match_path(self) -> list[Segment]:
        """`/a/{b}/{c=**}`, scanned as raw text right after `match`."""
        self.lex.reset(self.lex.pos)
        self.lex.skip_space()
        src, i = self.source, self.lex.pos
        if i >= len(src) or src[i] != "/":
            raise self.lex.error("expected a path starting with '/' after 'match'", i)
        segments: list[Segment] = []
        while i < len(src) and src[i] == "/":
            i += 1
            if src.startswith("{", i):
                end = src.find("}", i)
                inner = src[i + 1:end] if end > 0 else ""
                m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=\s*\*\*\s*)?", inner)
                if end < 0 or not m:
                    raise self.lex.error("a wildcard is written {name} or {name=**}", i)
                segments.append(Segment(m.group(1), "recursive" if m.group(2) else "single"))
                i = end + 1
            else:
                m = _MATCH_LITERAL.match(src, i)
                if not m:
                    raise self.lex.error("empty segment in match path", i)
                segments.append(Segment(m.group(), "literal"))
                i = m.end()
        self.lex.reset(i)
        return segments

    def allow(self) -> Allow:
        keyword = self.lex.next()
        line, column = self.pos(keyword)
        methods = []
        while True:
            token = self.lex.peek()
            if token.kind != "ident" or token.text not in METHODS:
                raise self.error(f"expected one of {', '.join(METHODS)} after 'allow', found {_describe(token)}")
            methods.append(self.lex.next().text)
            if not self.accept(","):
                break
        condition: Expr | None = None
        if self.accept(":"):
            self.expect("if", "after ':' in an allow statement")
            condition = self.expression()
        if not self.accept(";") and not self.at("}"):
            raise self.error(f"expected ';' after the allow statement, found {_describe(self.lex.peek())}")
        return Allow(tuple(methods), condition, line, column)

    def function(self) -> FunctionDecl:
        keyword = self.lex.next()
        line, column = self.pos(keyword)
        name = self.ident("after 'function'").text
        self.expect("(", f"after the name of function {name}")
        params: list[str] = []
        if not self.at(")"):
            while True:
                params.append(self.ident(f"as a parameter of function {name}").text)
                if not self.accept(","):
                    break
        self.expect(")", f"to close the parameters of function {name}")
        self.expect("{", f"to open the body of function {name}")
        lets: list[tuple[str, Expr]] = []
        while self.at("let"):
            self.lex.next()
            let_name = self.ident("after 'let'").text
            self.expect("=", f"after 'let {let_name}'")
            lets.append((let_name, self.expression()))
            self.expect(";", f"after the value of 'let {let_name}'")
        self.expect("return", f"in function {name} (its body is `let` bindings, then `return <expression>;`)")
        body = self.expression()
        self.accept(";")
        self.expect("}", f"to close function {name} (nothing may follow its return statement)")
        return FunctionDecl(name, params, lets, body, line, column)

    # -- expressions --------------------------------------------------------------------------------------

    def expression(self) -> Expr:
        condition = self.or_expr()
        token = self.accept("?")
        if token is None:
            return condition
        then = self.expression()
        self.expect(":", "in a conditional expression (a ? b : c)")
        otherwise = self.expression()
        return Ternary(*self.pos(token), condition, then, otherwise)

    def or_expr(self) -> Expr:
        left = self.and_expr()
        while (token := self.accept("||")) is not None:
            left = Binary(*self.pos(token), "||", left, self.and_expr())
        return left

    def and_expr(self) -> Expr:
        left = self.relation()
        while (token := self.accept("&&")) is not None:
            left = Binary(*self.pos(token), "&&", left, self.relation())
        return left

    def relation(self) -> Expr:
        left = self.additive()
        while True:
            token = self.lex.peek()
            if token.kind == "op" and token.text in ("==", "!=", "<", "<=", ">", ">="):
                self.lex.next()
                left = Binary(*self.pos(token), token.text, left, self.additive())
            elif token.kind == "ident" and token.text == "in":
                self.lex.next()
                left = Binary(*self.pos(token), "in", left, self.additive())
            elif token.kind == "ident" and token.text == "is":
                self.lex.next()
                type_token = self.lex.next()
                if type_token.kind != "ident" or type_token.text not in TYPE_NAMES:
                    raise self.error(f"expected a type name ({', '.join(TYPE_NAMES)}) after 'is', found "
                                     f"{_describe(type_token)}", type_token)
                left = IsType(*self.pos(token), left, type_token.text)
            else:
                return left

    def additive(self) -> Expr:
        left = self.multiplicative()
        while True:
            token = self.lex.peek()
            if token.kind == "op" and token.text in ("+", "-"):
                self.lex.next()
                left = Binary(*self.pos(token), token.text, left, self.multiplicative())
            else:
                return left

    def multiplicative(self) -> Expr:
        left = self.unary()
        while True:
            token = self.lex.peek()
            if token.kind == "op" and token.text in ("*", "/", "%"):
                self.lex.next()
                left = Binary(*self.pos(token), token.text, left, self.unary())
            else:
                return left

    def unary(self) -> Expr:
        token = self.lex.peek()
        if token.kind == "op" and token.text in ("!", "-"):
            self.lex.next()
            operand = self.unary()
            if token.text == "-" and isinstance(operand, Literal) and type(operand.value) in (int, float):
                return Literal(*self.pos(token), -operand.value)
            return Unary(*self.pos(token), token.text, operand)
        return self.postfix()

    def postfix(self) -> Expr:
        node = self.primary()
        while True:
            token = self.lex.peek()
            if token.kind != "op":
                return node
            if token.text == ".":
                self.lex.next()
                name_token = self.lex.next()
                if name_token.kind != "ident":
                    raise self.error(f"expected a field or method name after '.', found {_describe(name_token)}",
                                     name_token)
                if self.at("("):
                    self.lex.next()
                    node = MethodCall(*self.pos(name_token), node, name_token.text, self.arguments())
                else:
                    node = Member(*self.pos(name_token), node, name_token.text)
            elif token.text == "[":
                self.lex.next()
                first = self.expression()
                if self.accept(":"):
                    end = self.expression()
                    self.expect("]", "to close a range [a:b]")
                    node = Slice(*self.pos(token), node, first, end)
                else:
                    self.expect("]", "to close an index")
                    node = Index(*self.pos(token), node, first)
            elif token.text == "(":
                raise self.error("only named functions can be called")
            else:
                return node

    def arguments(self) -> list[Expr]:
        args: list[Expr] = []
        if not self.at(")"):
            while True:
                args.append(self.expression())
                if not self.accept(","):
                    break
        self.expect(")", "to close the argument list")
        return args

    def primary(self) -> Expr:
        token = self.lex.peek()
        line, column = self.pos(token)
        if token.kind in ("int", "float", "string"):
            self.lex.next()
            return Literal(line, column, token.value)
        if token.kind == "ident":
            if token.text in ("true", "false"):
                self.lex.next()
                return Literal(line, column, token.text == "true")
            if token.text == "null":
                self.lex.next()
                return Literal(line, column, None)
            if token.text in _KEYWORDS:
                raise self.error(f"expected an expression, found '{token.text}'")
            self.lex.next()
            if self.at("("):
                self.lex.next()
                return Call(line, column, token.text, self.arguments())
            return Ident(line, column, token.text)
        if token.kind == "op":
            if token.text == "(":
                self.lex.next()
                inner = self.expression()
                self.expect(")", "to close a parenthesised expression")
                return inner
            if token.text == "[":
                self.lex.next()
                items: list[Expr] = []
                if not self.at("]"):
                    while True:
                        items.append(self.expression())
                        if not self.accept(","):
                            break
                        if self.at("]"):
                            break
                self.expect("]", "to close a list")
                return ListExpr(line, column, items)
            if token.text == "{":
                self.lex.next()
                entries: list[tuple[Expr, Expr]] = []
                if not self.at("}"):
                    while True:
                        key = self.expression()
                        self.expect(":", "between a map key and its value")
                        entries.append((key, self.expression()))
                        if not self.accept(","):
                            break
                        if self.at("}"):
                            break
                self.expect("}", "to close a map")
                return MapExpr(line, column, entries)
            if token.text == "/":
                return self.path_literal(token)
        raise self.error(f"expected an expression, found {_describe(token)}")

    def path_literal(self, token: Token) -> PathExpr:
        """`/databases/$(database)/documents/users/$(request.auth.uid)`, scanned from the first '/'. Only
        `$(...)` interpolates; `(default)` is a literal segment."""
        line, column = self.pos(token)
        src, i = self.source, token.start
        segments: list[str | Expr] = []
        while i < len(src) and src[i] == "/":
            i += 1
            if src.startswith("$(", i):
                self.lex.reset(i + 2)
                segments.append(self.expression())
                close = self.lex.peek()
                if not (close.kind == "op" and close.text == ")"):
                    raise self.error(f"expected ')' to close a path variable, found {_describe(close)}")
                i = close.end
            else:
                m = _PATH_LITERAL.match(src, i)
                if not m:
                    raise self.lex.error("expected a path segment after '/'", i)
                segments.append(m.group())
                i = m.end()
        self.lex.reset(i)
        return PathExpr(line, column, segments)


def _describe(token: Token) -> str:
    if token.kind == "eof":
        return "end of file"
    return f"'{token.text}'"


def parse(source: str, file: str = "firestore.rules") -> RulesFile:
    """The syntax tree of `source`, or RulesSyntaxError naming the line and column of the first problem."""
    parser = Parser(source, file)
    try:
        return parser.parse_file()
    except RecursionError:
        raise parser.lex.error("expression nested too deeply", parser.lex.pos) from None
