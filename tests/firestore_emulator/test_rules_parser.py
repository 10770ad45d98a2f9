"""Loading rules: what the emulator accepts, and the line, column and reason of what it refuses.

Rules outside the supported subset must fail loudly at load time, never load and silently allow.
"""

from __future__ import annotations

import pathlib

import pytest

from oncetask_emulators.firestore.rules.ruleset import Ruleset
from oncetask_emulators.firestore.rules.syntax import RulesSyntaxError


def in_match(body: str) -> str:
    """`body` as the only content of a document match block, on line 4."""
    return ("rules_version = '2';\nservice cloud.firestore {\n  match /databases/{database}/documents/{doc=**} {\n"
            f"{body}\n  }}\n}}\n")


REFUSED = [
    ("no service block", "rules_version = '2';\n", 2, 1, "expected 'service'"),
    ("another service", "service firebase.storage {\n}\n", 1, 1, "unsupported service 'firebase.storage'"),
    ("an unknown rules_version", "rules_version = '3';\nservice cloud.firestore {}\n", 1, 17,
     "rules_version must be '1' or '2'"),
    ("allow outside a match block", "service cloud.firestore {\n  allow read;\n}\n", 2, 3,
     "'allow' must be inside a 'match' block"),
    ("an unknown method", in_match("    allow reed: if true;"), 4, 11, "expected one of read, write"),
    ("a condition without if", in_match("    allow read: true;"), 4, 17, "expected 'if'"),
    ("two statements without a semicolon", in_match("    allow read: if true allow write: if false;"), 4, 25,
     "expected ';' after the allow statement"),
    ("an unterminated string", in_match("    allow read: if 'abc;"), 4, 20, "unterminated string literal"),
    ("an unterminated comment", in_match("    /* allow read;"), 4, 5, "unterminated comment"),
    ("an unknown escape", in_match(r"    allow read: if 'a\q' == 'b';"), 4, 22, "unknown escape \\q"),
    ("an unknown variable", in_match("    allow read: if reqest.auth != null;"), 4, 20, "unknown variable 'reqest'"),
    ("an undeclared function", in_match("    allow read: if isOwner();"), 4, 20, "function isOwner() is not declared"),
    ("a call with the wrong number of arguments",
     in_match("    function f(a) { return a; }\n    allow read: if f(1, 2);"), 5, 20, "f() takes 1 argument(s), 2 given"),
    ("an unknown method name", in_match("    allow read: if resource.data.keys().sizee() > 0;"), 4, 41,
     "unknown method sizee()"),
    ("an unknown math function", in_match("    allow read: if math.cube(2) == 8;"), 4, 25,
     "math.cube() is not a function"),
    ("a recursive function", in_match("    function f(n) { return n == 0 || f(n - 1); }\n    allow read: if f(3);"),
     4, 5, "recursive function calls are not allowed: f -> f"),
    ("mutually recursive functions",
     in_match("    function f() { return g(); }\n    function g() { return f(); }\n    allow read: if f();"), 4, 5,
     "recursive function calls are not allowed: f -> g -> f"),
    ("an unknown type after is", in_match("    allow read: if request.auth is object;"), 4, 36,
     "expected a type name"),
    ("a malformed wildcard", "service cloud.firestore {\n  match /a/{b=*} {\n  }\n}\n", 2, 12,
     "a wildcard is written {name} or {name=**}"),
    ("a recursive wildcard before the end in rules_version 1",
     "service cloud.firestore {\n  match /{rest=**}/a/{b} {\n    allow read;\n  }\n}\n", 2, 3,
     "with rules_version '1' a {name=**} wildcard must be the last segment"),
    ("two recursive wildcards", "rules_version = '2';\nservice cloud.firestore {\n  match /{a=**}/x/{b=**} {\n  }\n}\n",
     3, 3, "at most one {name=**} wildcard"),
    ("a function declared twice",
     in_match("    function f() { return true; }\n    function f() { return false; }"), 5, 5,
     "function f is declared twice"),
    ("a function hiding a built-in", in_match("    function get(p) { return p; }"), 4, 5,
     "function get would hide the built-in get()"),
    ("a statement after return", in_match("    function f() { return true; let x = 1; }"), 4, 33,
     "expected '}' to close function f"),
    ("a missing closing brace", "service cloud.firestore {\n  match /a/{b} {\n    allow read;\n", 4, 1,
     "expected 'allow', 'match' or 'function', found end of file"),
    ("an integer literal beyond 64 bits", in_match("    allow read: if 9223372036854775808 > 0;"), 4, 20,
     "does not fit in 64 bits"),
    ("a raw string literal", in_match("    allow read: if r'a' == 'a';"), 4, 21, "expected ';' after the allow"),
    ("an expression where a name is needed", in_match("    allow read: if request.(auth);"), 4, 28,
     "expected a field or method name after '.'"),
    ("a call of an expression", in_match("    allow read: if (true)(1);"), 4, 26, "only named functions can be called"),
    ("text after the service block", "service cloud.firestore {\n}\nallow read;\n", 3, 1, "unexpected 'allow'"),
]


@pytest.mark.parametrize(("source", "line", "column", "reason"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_rules_outside_the_subset_are_refused_with_line_and_column(source, line, column, reason):
    with pytest.raises(RulesSyntaxError) as refused:
        Ruleset.parse(source, "test.rules")

    assert reason in refused.value.description
    assert (refused.value.line, refused.value.column) == (line, column)
    assert str(refused.value).startswith(f"test.rules:{line}:{column}: ")


ACCEPTED = [
    ("comments of both kinds", in_match("    // a line comment\n    /* a block\n comment */ allow read: if true;")),
    ("an unconditional allow", in_match("    allow read;")),
    ("an allow without its final semicolon", in_match("    allow read: if true")),
    ("every method name", in_match("    allow read, write, get, list, create, update, delete: if false;")),
    ("double-quoted strings with escapes", in_match('    allow read: if "a\\"b\\n\\u00e9" != \'x\';')),
    ("path variables and the literal (default) database",
     in_match("    allow read: if exists(/databases/$(database)/documents/a/$(doc)) || "
              "exists(/databases/(default)/documents/b/c);")),
    ("functions with let bindings and parameters",
     in_match("    function f(a, b) {\n      let c = a + b;\n      let d = c * 2;\n      return d > 3;\n    }\n"
              "    allow read: if f(1, 2);")),
    ("functions at service level called from a match",
     "service cloud.firestore {\n  function yes() { return true; }\n  match /a/{b} {\n    allow read: if yes();\n"
     "  }\n}\n"),
    ("wildcards visible in functions of their block",
     "service cloud.firestore {\n  match /a/{b} {\n    function mine() { return request.auth.uid == b; }\n"
     "    allow read: if mine();\n  }\n}\n"),
    ("map and list literals, ranges and ternaries",
     in_match("    allow read: if {'a': [1, 2, 3][0:2]}.a.size() == 2 ? true : false;")),
    ("numbers in every form", in_match("    allow read: if 1 + 2.5 + 1e3 + .5 + 0x1F - -3 > 0;")),
    ("type checks", in_match("    allow read: if 1 is int && 1.5 is float && 'a' is string && [] is list && {} is map"
                             " && request.time is timestamp && 1 is number;")),
    ("the namespaces' functions",
     in_match("    allow read: if math.abs(-1) == 1 && duration.value(1, 'h') > duration.time(0, 59, 0, 0)"
              " && timestamp.date(2024, 1, 1) < request.time && latlng.value(1, 2).latitude() == 1;")),
]


@pytest.mark.parametrize("source", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_rules_in_the_subset_load(source):
    Ruleset.parse(source)


def test_an_absurdly_nested_expression_is_refused_not_a_crash():
    with pytest.raises(RulesSyntaxError) as refused:
        Ruleset.parse(in_match("    allow read: if " + "(" * 5000 + "true" + ")" * 5000 + ";"))

    assert refused.value.description == "expression nested too deeply"
    assert refused.value.line == 4


def test_the_repository_rules_load():
    Ruleset.parse((pathlib.Path(__file__).parents[2] / "firestore.rules").read_text())
