"""The rules language as the evaluator implements it: values, operators, methods, errors, wildcards and
query proofs. Pure decisions, checked without a server (the request paths are covered in test_rules_*.py)."""

from __future__ import annotations

import pytest

from oncetask_emulators.firestore.rules import matching, symbolic
from oncetask_emulators.firestore.rules.evaluator import Reads
from oncetask_emulators.firestore.rules.ruleset import Ruleset
from oncetask_emulators.firestore.rules.values import Path, Timestamp
from google.cloud.firestore_v1.types import document

DOC = ("databases", "(default)", "documents", "a", "b")
NOW = Timestamp(1_700_000_000 * 10**9)


def rules(body: str, version: str = "2", match: str = "/databases/{database}/documents/{coll}/{id}") -> Ruleset:
    return Ruleset.parse(f"rules_version = '{version}';\nservice cloud.firestore {{\n  match {match} {{\n{body}\n"
                         "  }\n}\n")


def stored(n: int) -> document.Document:
    return document.Document.pb()(name=f"projects/p/databases/(default)/documents/c/d{n}")


def holds(expr: str, *, resource: dict | None = None, auth: dict | None = None, functions: str = "",
          count: int = 0) -> bool:
    """Whether `allow get: if <expr>` allows a get of /a/b; `count` documents c/d0.. exist for get()."""
    names = {stored(i).name: stored(i) for i in range(count)}
    ruleset = rules(f"{functions}\n    allow get: if {expr};")
    reads = Reads("p", "(default)", before=names.get)
    request = {"auth": auth, "method": "get", "time": NOW, "path": Path(DOC)}
    return ruleset.decide("get", DOC, {"request": request, "resource": resource}, reads).allowed


TRUE = [
    "1 == 1.0", "true != 1", "null == null", "7 / 2 == 3", "-7 / 2 == -3", "-7 % 3 == -1", "7.0 / 2 == 3.5",
    "(1 / 0 == 0) || true", "!((1 / 0 == 0) && false)", "'a' in {'a': 1}", "2 in [1, 2]", "!('x' in ['a'])",
    "[1, [2, 3]] == [1, [2, 3]]", "{'a': 1, 'b': 2} == {'b': 2, 'a': 1.0}", "'a' + 'b' == 'ab'",
    "(1 > 2 ? 'a' : 'b') == 'b'",
    # strings
    "'Hello World'.lower().split(' ') == ['hello', 'world']", "'abc'.matches('a.c') && !'abcd'.matches('a.c')",
    "'  x '.trim() == 'x'", "'a-b'.replace('-', '+') == 'a+b'", "'é'.size() == 1", "'abc'.toUtf8().size() == 3",
    "'abc'.upper() == 'ABC'", "'abcdef'[1:3] == 'bc'",
    # lists and sets
    "[1, 2, 3].hasAll([1, 3]) && [1, 2].hasAny([2, 9]) && [1, 1, 2].hasOnly([1, 2]) && !([1, 4].hasOnly([1]))",
    "[1, 2, 2].toSet().size() == 2", "['a', 'b'].join('-') == 'a-b'", "[1, 2, 3].removeAll([2]) == [1, 3]",
    "[1].concat([2]) == [1, 2]", "[1, 2, 3][1] == 2", "[1, 2, 3][0:2] == [1, 2]",
    "[1, 2].toSet().union([3].toSet()) == [1, 2, 3].toSet()", "[1, 2].toSet().intersection([2, 3]) == [2].toSet()",
    "[1, 2].toSet().difference([2]) == [1].toSet()", "1 in [1, 2].toSet()",
    # maps
    "{'a': {'b': 1}}.get(['a', 'b'], 0) == 1", "{'a': 1}.get('z', 7) == 7", "{'a': 1}.keys() == ['a']",
    "{'a': 1}.values() == [1]", "{'a': 1, 'b': 2}.size() == 2",
    "{'a': 1, 'b': 2}.diff({'a': 1, 'b': 3, 'c': 4}).affectedKeys() == ['b', 'c'].toSet()",
    "{'a': 1, 'b': 2}.diff({'a': 1, 'c': 4}).addedKeys() == ['c'].toSet()",
    "{'a': 1, 'b': 2}.diff({'a': 1, 'c': 4}).removedKeys() == ['b'].toSet()",
    "{'a': 1, 'b': 2}.diff({'a': 1, 'b': 3}).changedKeys() == ['b'].toSet()",
    "{'a': 1, 'b': 2}.diff({'a': 1, 'b': 3}).unchangedKeys() == ['a'].toSet()",
    # time
    "timestamp.date(2024, 3, 1) - timestamp.date(2024, 2, 1) == duration.value(29, 'd')",
    "timestamp.value(1000).toMillis() == 1000",
    "timestamp.date(2024, 3, 1).year() == 2024 && timestamp.date(2024, 3, 1).month() == 3",
    "(timestamp.date(2024, 3, 1) + duration.value(90, 'm')).hours() == 1",
    "(timestamp.date(2024, 3, 1) + duration.value(90, 'm')).minutes() == 30",
    "(timestamp.date(2024, 3, 1) + duration.value(5, 'h')).date() == timestamp.date(2024, 3, 1)",
    "duration.value(90, 's').seconds() == 90", "duration.time(1, 2, 3, 4).nanos() == 4",
    "duration.value(400, 'd').seconds() == 34560000", "(-duration.value(1500, 'ms')).seconds() == -1",
    "(-duration.value(1500, 'ms')).nanos() == -500000000",
    "request.time > timestamp.date(2020, 1, 1)", "request.time.toMillis() == 1700000000000",
    # conversions and math
    "int('42') == 42", "float('1.5') == 1.5", "string(12) == '12'", "string(true) == 'true'", "int(2.9) == 2",
    "math.floor(1.7) == 1 && math.ceil(1.2) == 2 && math.round(2.5) == 3 && math.sqrt(9.0) == 3.0",
    "math.pow(2, 10) == 1024", "math.abs(-2) == 2", "debug(1) == 1",
    # types
    "1 is int && !(1 is float) && 1 is number && 1.0 is float && 'a' is string && [1] is list && {} is map",
    "true is bool && 'a'.toUtf8() is bytes",
    "request.time is timestamp && duration.value(1, 's') is duration && /a/b is path",
    "!(null is map)",
    # paths
    "/databases/x/documents/a/b == path('/databases/x/documents/a/b')", "(/a/b/c)[1] == 'b'",
    "/databases/$(database)/documents/a/$(id) == path('/databases/(default)/documents/a/b')",
    "/databases/$(database)/documents/a/$(id) == /databases/(default)/documents/a/b",
    # wildcards
    "coll == 'a' && id == 'b' && database == '(default)'",
]

FALSE = [
    "9223372036854775807 + 1 > 0", "1 / 0 == 0", "!((1 / 0 == 0) || false)", "'1' + 1 == '11'", "[1][5] == 1",
    "1 < 'a'", "{'a': 1}['z'] == 1", "1", "null", "'x'.matches('(')", "int('x') == 0", "request.auth.uid == 'a'",
    "duration.value(1, 'y') > duration.value(0, 's')",
]


@pytest.mark.parametrize("expr", TRUE)
def test_expressions_that_hold(expr):
    assert holds(expr)


@pytest.mark.parametrize("expr", FALSE)
def test_expressions_that_are_false_or_errors_deny(expr):
    assert not holds(expr)


def test_resource_exposes_data_id_and_name():
    resource = {"data": {"n": 1}, "id": "b", "__name__": Path(DOC)}

    assert holds("resource.data.n == 1 && resource.id == 'b' && resource.__name__ == "
                 "/databases/$(database)/documents/a/b", resource=resource)
    assert not holds("resource.data.missing == null", resource=resource)
    assert holds("resource.data.get('missing', null) == null", resource=resource)


def test_a_let_binding_is_evaluated_only_when_used():
    assert holds("f()", functions="    function f() { let bad = 1 / 0; return true; }")
    assert not holds("f()", functions="    function f() { let bad = 1 / 0; return bad == 0; }")


def test_function_calls_nest_at_most_twenty_deep():
    chain = "\n".join(f"    function f{i}() {{ return f{i + 1}(); }}" for i in range(21)) + \
        "\n    function f21() { return true; }"

    assert holds("f2()", functions=chain)  # 20 calls: f2 .. f21
    assert not holds("f1()", functions=chain)  # 21 calls


def test_a_request_may_read_ten_documents_in_its_rules():
    ten = " && ".join(f"exists(/databases/$(database)/documents/c/d{i})" for i in range(10))

    assert holds(ten, count=11)
    assert not holds(ten + " && exists(/databases/$(database)/documents/c/d10)", count=11)
    assert holds(ten + " && exists(/databases/$(database)/documents/c/d0)", count=11)  # the same one again is free


def test_reads_of_another_database_are_errors():
    assert not holds("!exists(/databases/other/documents/c/d0)", count=1)


def test_a_recursive_wildcard_matches_zero_segments_in_version_2_only():
    env = {"request": {"auth": None}, "resource": None}
    reads = Reads("p", "(default)", before=lambda name: None)
    v2 = rules("    allow get: if true;", "2",
               "/databases/{database}/documents/a/b/{rest=**}")
    v1 = rules("    allow get: if true;", "1", "/databases/{database}/documents/a/b/{rest=**}")

    assert v2.decide("get", DOC, env, reads).allowed
    assert not v1.decide("get", DOC, env, reads).allowed
    assert v1.decide("get", (*DOC, "c", "d"), env, reads).allowed


def test_nested_match_blocks_concatenate_their_paths():
    ruleset = Ruleset.parse("service cloud.firestore {\n  match /databases/{d}/documents {\n    match /a/{x} {\n"
                            "      match /sub/{y} {\n        allow get: if x == 'b' && y == 'c';\n      }\n    }\n"
                            "  }\n}\n")
    env = {"request": {"auth": None}, "resource": None}
    reads = Reads("p", "(default)", before=lambda name: None)

    assert ruleset.decide("get", (*DOC, "sub", "c"), env, reads).allowed
    assert not ruleset.decide("get", DOC, env, reads).allowed


def list_allowed(condition: str, branch: symbolic.Branch, auth: dict | None = None) -> bool:
    ruleset = rules(f"    allow list: if {condition};")
    items = ("databases", "(default)", "documents", "a", matching.ANY_ID)
    reads = Reads("p", "(default)", before=lambda name: None)
    request = {"auth": auth, "method": "list", "time": NOW, "query": {"limit": None, "offset": 0}}
    return ruleset.decide_query(items, [branch], {"request": request}, reads).allowed


QUERY_PROOFS = [
    ("an equality filter fixes the field", "resource.data.owner == 'u'", symbolic.Branch(equal={("owner",): "u"}),
     True),
    ("a nested field fixed by equality", "resource.data.meta.owner == 'u'",
     symbolic.Branch(equal={("meta", "owner"): "u"}), True),
    ("not-in proves !=", "resource.data.state != 'secret'",
     symbolic.Branch(not_equal={("state",): ["secret", "x"]}, present={("state",)}), True),
    ("!= for another value is unproven", "resource.data.state != 'secret'",
     symbolic.Branch(not_equal={("state",): ["x"]}, present={("state",)}), False),
    ("is-not-null proves != null", "resource.data.state != null", symbolic.Branch(present={("state",)}), True),
    ("a numeric range proves `is number`", "resource.data.n is number",
     symbolic.Branch(ranges={("n",): [(">", 1)]}, present={("n",)}), True),
    ("an equality on a number leaves int-or-float open", "resource.data.n is int",
     symbolic.Branch(equal={("n",): symbolic._query_value(document.Value.pb()(integer_value=1), ("n",))}), False),
    ("a wildcard ID fixed by a __name__ filter", "id == 'x'",
     symbolic.Branch(equal={("__name__",): Path(("databases", "(default)", "documents", "a", "x"))}), True),
    ("an open wildcard ID is unproven", "id == 'x'", symbolic.Branch(), False),
    ("an unknown operand absorbed by ||", "resource.data.x == 1 || true", symbolic.Branch(), True),
    ("an unknown operand absorbed by &&", "!(resource.data.x == 1 && false)", symbolic.Branch(), True),
    ("methods of an unfixed field are unproven", "resource.data.tags.size() < 3", symbolic.Branch(), False),
    ("a whole-document check is unproven", "resource.data.keys().hasAll(['a'])", symbolic.Branch(), False),
    ("resource is never null in a list", "resource != null", symbolic.Branch(), True),
    ("a range on timestamps", "resource.data.t < timestamp.date(2030, 1, 1)",
     symbolic.Branch(ranges={("t",): [("<", Timestamp(0))]}, present={("t",)}), True),
]


@pytest.mark.parametrize(("condition", "branch", "allowed"), [c[1:] for c in QUERY_PROOFS],
                         ids=[c[0] for c in QUERY_PROOFS])
def test_a_list_rule_is_allowed_only_when_the_query_proves_it(condition, branch, allowed):
    assert list_allowed(condition, branch) is allowed
