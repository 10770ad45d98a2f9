"""Firestore's value order and equality, and field paths and document names (pure, no server)."""

from __future__ import annotations

import datetime
import math

import pytest
from google.cloud.firestore_v1 import GeoPoint
from google.cloud.firestore_v1.vector import Vector
from google.cloud.firestore_v1._helpers import encode_value
from google.cloud.firestore_v1.types import document
from hypothesis import given, settings
from hypothesis import strategies as st

from oncetask_emulators.firestore import paths, values
from oncetask_emulators.firestore.errors import InvalidArgument

ValuePb = document.Value.pb()
ROOT = "projects/p/databases/(default)/documents"


def v(x) -> ValuePb:
    """Encode a Python value exactly as the client sends it."""
    return document.Value.pb(encode_value(x))


def ref(path: str) -> ValuePb:
    return ValuePb(reference_value=f"{ROOT}/{path}")


def ts(seconds: int, micros: int = 0) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc) + datetime.timedelta(microseconds=micros)


ASCENDING = [
    v(None),
    v(False),
    v(True),
    v(float("nan")),
    v(float("-inf")),
    v(-(2**63)),
    v(-1.5),
    v(0),
    v(1),
    v(2**53),
    v(2**53 + 1),  # above every double that is <= 2**53: compared exactly, not through float
    v(float("inf")),
    v(ts(0)),
    v(ts(0, 1)),
    v(ts(1)),
    v(""),
    v("A"),
    v("a"),
    v("\uffff"),
    v("\U0001f600"),  # UTF-8 (code point) order; UTF-16 would put it before U+FFFF
    v(b""),
    v(b"\x00"),
    v(b"\xff"),
    ref("col/__id-5__"),  # numeric IDs sort before all others, by number
    ref("col/__id7__"),
    ref("col/__id30__"),
    ref("col/0"),
    ref("col/A"),
    ref("col/__idx__"),  # not a number: an ordinary ID
    ref("col/a"),
    ref("col/a/sub/x"),
    ref("col/b"),
    ref("col-x/a"),  # segment-wise: "col" < "col-x", although "col/" > "col-" as whole strings
    v(GeoPoint(-10, 100)),
    v(GeoPoint(0, -1)),
    v(GeoPoint(0, 1)),
    v([]),
    v([None]),
    v([1, "a"]),
    v([1, "a", None]),
    v([2]),
    v(Vector([9.0])),  # vectors order by length first, then by element
    v(Vector([1.0, 1.0])),
    v(Vector([1.0, 2.0])),
    v({}),
    v({"a": 1}),
    v({"a": 1, "b": 0}),
    v({"a": 2}),
    v({"b": 0}),
]


@pytest.mark.parametrize("i", range(len(ASCENDING) - 1))
def test_each_value_sorts_strictly_below_the_next_in_firestore_order(i):
    lower, higher = ASCENDING[i], ASCENDING[i + 1]
    assert values.compare(lower, higher) == -1
    assert values.compare(higher, lower) == 1


def test_sorting_a_shuffled_list_restores_firestore_order():
    shuffled = ASCENDING[::-1][1::2] + ASCENDING[::-1][0::2]
    assert sorted(shuffled, key=values.sort_key) == ASCENDING


def test_kinds_rank_null_bool_number_timestamp_string_bytes_reference_geo_array_vector_map():
    ranks = [values.type_rank(x) for x in (v(None), v(True), v(1), v(1.5), v(ts(0)), v("s"), v(b"b"),
                                            ref("c/d"), v(GeoPoint(0, 0)), v([]), v(Vector([1.0])), v({}))]
    assert ranks == sorted(ranks) and len(set(ranks)) == 11
    assert values.type_rank(ValuePb()) == values.NULL  # an unset Value reads as null


def test_pipeline_expression_values_are_invalid_argument_not_a_crash():
    with pytest.raises(InvalidArgument, match="field_reference_value"):
        values.compare(ValuePb(field_reference_value="a"), v(1))


@pytest.mark.parametrize(
    "a, b",
    [(1, 1.0), (0, -0.0), (float("nan"), float("nan")), (None, None), ([1, {"x": 2}], [1.0, {"x": 2.0}]),
     (2**62, float(2**62))],
)
def test_numerically_equal_values_are_equal_across_integer_and_double(a, b):
    assert values.equals(v(a), v(b))
    assert values.compare(v(a), v(b)) == 0


@pytest.mark.parametrize("a, b", [(1, "1"), (0, False), (None, 0), (2**53 + 1, float(2**53)), ([1], [1, 1]),
                                  ({"a": 1}, {"b": 1}), (b"a", "a")])
def test_values_of_different_kind_or_value_are_not_equal(a, b):
    assert not values.equals(v(a), v(b))


def test_map_order_compares_keys_before_values():
    # {"a": 9} < {"b": 0} because key "a" < "b" decides before any value is looked at.
    assert values.compare(v({"a": 9}), v({"b": 0})) == -1


# -- property tests: compare is a total order ---------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4), st.binary(max_size=3),
    st.sampled_from(["c/a", "c/b", "c/a/s/x", "d/a", "c/__id-1__", "c/__id2__", "c/__id__"]).map(lambda p: f"REF:{p}"),
    st.integers(0, 3).map(ts), st.tuples(st.sampled_from([-1.0, 0.0, 1.0]), st.floats(-180, 180)).map(
        lambda p: GeoPoint(*p)),
    st.lists(st.sampled_from([0.0, 1.0, float("nan")]), max_size=2).map(Vector),
)


def to_value(x) -> ValuePb:
    if isinstance(x, str) and x.startswith("REF:"):
        return ref(x[4:])
    if isinstance(x, list):
        out = ValuePb()
        out.array_value.SetInParent()
        out.array_value.values.extend(to_value(e) for e in x)
        return out
    if isinstance(x, dict):
        out = ValuePb()
        out.map_value.SetInParent()
        for key, e in x.items():
            out.map_value.fields[key].CopyFrom(to_value(e))
        return out
    return v(x)


firestore_values = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=2), scalars, max_size=3)
).map(to_value)


@settings(max_examples=150, deadline=None, derandomize=True)  # the same examples on every run and in CI
@given(firestore_values, firestore_values)
def test_compare_is_antisymmetric_and_consistent_with_equals(a, b):
    assert values.compare(a, b) == -values.compare(b, a)
    assert values.equals(a, b) == (values.compare(a, b) == 0)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(firestore_values, firestore_values, firestore_values)
def test_compare_is_transitive(a, b, c):
    for x, y, z in ((a, b, c), (b, c, a), (c, a, b), (a, c, b), (b, a, c), (c, b, a)):
        if values.compare(x, y) <= 0 and values.compare(y, z) <= 0:
            assert values.compare(x, z) <= 0


@settings(max_examples=150, deadline=None, derandomize=True)
@given(firestore_values, firestore_values)
def test_sort_key_orders_exactly_as_compare(a, b):
    ka, kb = values.sort_key(a), values.sort_key(b)
    assert (ka > kb) - (ka < kb) == values.compare(a, b)


# -- field paths ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, expected",
    [("a", ("a",)), ("a.b.c", ("a", "b", "c")), ("`a.b`.c", ("a.b", "c")), ("`x\\`y`", ("x`y",)),
     ("`back\\\\slash`", ("back\\slash",)), ("`` ``.x".replace("`` ``", "` `"), (" ", "x")),
     ("__name__", ("__name__",)), ("a.`0`", ("a", "0")), ("ünï.cødé", ("ünï", "cødé"))],
)
def test_field_paths_split_on_dots_outside_backticks(text, expected):
    assert paths.parse_field_path(text) == expected


@pytest.mark.parametrize("text", ["", ".", "a.", ".a", "a..b", "`a", "`a`b", "a`b`", "`a\\"])
def test_malformed_field_paths_are_invalid_argument_naming_the_path(text):
    with pytest.raises(InvalidArgument, match="Invalid field path"):
        paths.parse_field_path(text)


@pytest.mark.parametrize("path", [("a",), ("a.b", "c"), ("x`y", "0"), (" ",), ("a", "b_1")])
def test_formatting_a_field_path_parses_back_to_the_same_segments(path):
    assert paths.parse_field_path(paths.format_field_path(path)) == path


def test_get_field_follows_maps_and_stops_at_non_maps():
    fields = v({"a": {"b": {"c": 1}}, "s": "text"}).map_value.fields
    assert values.equals(paths.get_field(fields, ("a", "b", "c")), v(1))
    assert values.equals(paths.get_field(fields, ("a", "b")), v({"c": 1}))
    assert paths.get_field(fields, ("a", "x")) is None
    assert paths.get_field(fields, ("s", "x")) is None
    assert paths.get_field(fields, ("missing",)) is None


# -- document names -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("doc_id", ["a", "A-b_c.d", "...", "_x_", "__x", "x__", "é" * 750])
def test_ordinary_document_ids_are_accepted(doc_id):
    paths.validate_document_id(doc_id)


@pytest.mark.parametrize("doc_id, problem", [("", "empty"), (".", "reserved"), ("..", "reserved"),
                                             ("a/b", "'/'"), ("__x__", "__.*__"), ("____", "__.*__"),
                                             ("x" * 1501, "1500 bytes")])
def test_reserved_or_malformed_document_ids_are_invalid_argument(doc_id, problem):
    with pytest.raises(InvalidArgument, match=problem.replace("*", r"\*").replace(".", r"\.")):
        paths.validate_document_id(doc_id)


def test_document_names_need_pairs_of_valid_segments_under_a_database_root():
    paths.validate_document_name(f"{ROOT}/c/d")
    paths.validate_document_name(f"{ROOT}/c/d/sub/e")
    for bad in (f"{ROOT}/c", f"{ROOT}", f"{ROOT}/c/d/sub", f"{ROOT}/c/__d__", f"{ROOT}/c//d",
                "projects/p/databases/(default)/docs/c/d", "projects//databases/d/documents/c/d", "c/d"):
        with pytest.raises(InvalidArgument):
            paths.validate_document_name(bad)
