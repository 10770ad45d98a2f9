"""A Write applied to a document's fields: replace, masked merge, delete, and each field transform (pure)."""

from __future__ import annotations

import math

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from google.cloud.firestore_v1 import DELETE_FIELD, SERVER_TIMESTAMP, ArrayUnion, Increment, _helpers
from google.cloud.firestore_v1._helpers import encode_dict, encode_value
from google.cloud.firestore_v1.types import common, document, write
from google.cloud.firestore_v1.vector import Vector
from google.protobuf import timestamp_pb2

from oncetask_emulators.firestore import transforms, values
from oncetask_emulators.firestore.errors import InvalidArgument

ValuePb = document.Value.pb()
WritePb = write.Write.pb()
FieldTransformPb = write.DocumentTransform.FieldTransform.pb()
NAME = "projects/p/databases/(default)/documents/c/d"
NOW = timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=123_456_789)
INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)


def v(x) -> ValuePb:
    return document.Value.pb(encode_value(x))


def fields(**data) -> dict[str, ValuePb]:
    return {k: document.Value.pb(x) for k, x in encode_dict(data).items()}


def as_python(f: dict[str, ValuePb] | None):
    """Fields back as one comparable Value (or None), so assertions can use values.equals."""
    if f is None:
        return None
    out = ValuePb()
    out.map_value.SetInParent()
    for k, x in f.items():
        out.map_value.fields[k].CopyFrom(x)
    return out


def assert_fields(actual, **expected):
    assert values.equals(as_python(actual), v(expected)), f"{as_python(actual)} != {expected}"


def update(data: dict, mask: list[str] | None = None, *ts: FieldTransformPb) -> WritePb:
    w = WritePb(update=document.Document.pb()(name=NAME, fields=fields(**data)), update_transforms=list(ts))
    if mask is not None:
        w.update_mask.CopyFrom(common.DocumentMask.pb()(field_paths=mask))
    return w


def transform(path: str, **kind) -> FieldTransformPb:
    t = FieldTransformPb(field_path=path)
    (name, operand), = kind.items()
    if name == "set_to_server_value":
        t.set_to_server_value = FieldTransformPb.ServerValue.REQUEST_TIME
    elif name in ("append_missing_elements", "remove_all_from_array"):
        getattr(t, name).values.extend(v(e) for e in operand)
        getattr(t, name).SetInParent()
    else:
        getattr(t, name).CopyFrom(v(operand))
    return t


# -- update, mask, delete -------------------------------------------------------------------------------------

def test_update_without_mask_replaces_every_field():
    new, results = transforms.apply_write(fields(a=1, b=2), update({"c": 3}), NOW)
    assert_fields(new, c=3)
    assert results == []


def test_update_of_a_missing_document_creates_its_fields():
    new, _ = transforms.apply_write(None, update({"a": {"b": 1}}), NOW)
    assert_fields(new, a={"b": 1})


def test_masked_update_changes_only_masked_paths_and_keeps_the_rest():
    current = fields(a=1, m={"x": 1, "y": 2}, keep="k")
    new, _ = transforms.apply_write(current, update({"a": 9, "m": {"x": 5}}, ["a", "m.x"]), NOW)
    assert_fields(new, a=9, m={"x": 5, "y": 2}, keep="k")


def test_masked_path_absent_from_the_data_is_deleted():
    new, _ = transforms.apply_write(fields(a=1, m={"x": 1, "y": 2}), update({}, ["a", "m.y", "nothing.here"]), NOW)
    assert_fields(new, m={"x": 1})


def test_masked_nested_path_replaces_a_non_map_parent_with_a_map():
    new, _ = transforms.apply_write(fields(m="scalar"), update({"m": {"x": 1}}, ["m.x"]), NOW)
    assert_fields(new, m={"x": 1})


def test_masked_path_with_quoted_segment_sets_the_literal_field_name():
    new, _ = transforms.apply_write(None, update({"a.b": 1}, ["`a.b`"]), NOW)
    assert_fields(new, **{"a.b": 1})


def test_masked_update_leaves_the_callers_current_fields_untouched():
    current = fields(m={"x": 1})
    transforms.apply_write(current, update({"m": {"x": 2}}, ["m.x"]), NOW)
    assert_fields(current, m={"x": 1})


def test_delete_returns_no_fields():
    assert transforms.apply_write(fields(a=1), WritePb(delete=NAME), NOW) == (None, [])


def test_overlapping_mask_paths_are_invalid_argument():
    with pytest.raises(InvalidArgument, match="overlapping"):
        transforms.apply_write(None, update({"a": {"b": 1}}, ["a", "a.b"]), NOW)


def test_array_directly_inside_array_is_invalid_argument():
    w = update({})
    inner = w.update.fields["a"].array_value.values.add()
    inner.array_value.values.add(integer_value=1)
    with pytest.raises(InvalidArgument, match="array value directly inside an array"):
        transforms.apply_write(None, w, NOW)


def test_reserved_field_name_is_invalid_argument():
    with pytest.raises(InvalidArgument, match="__.*__"):
        transforms.apply_write(None, update({"__secret__": 1}), NOW)


def test_write_without_operation_is_invalid_argument():
    with pytest.raises(InvalidArgument, match="update, delete or transform"):
        transforms.apply_write(None, WritePb(), NOW)


# -- transforms -----------------------------------------------------------------------------------------------

def test_request_time_sets_the_field_to_the_commit_time_in_microseconds_and_reports_it():
    new, results = transforms.apply_write(None, update({"a": 1}, None, transform("t", set_to_server_value=1)), NOW)
    expected = ValuePb(timestamp_value=timestamp_pb2.Timestamp(seconds=NOW.seconds, nanos=123_456_000))
    assert values.equals(new["t"], expected)
    assert values.equals(results[0], expected)
    assert values.equals(new["a"], v(1))


def test_transforms_apply_after_the_update_in_order_with_one_result_each():
    w = update({"n": 1}, None, transform("n", increment=2), transform("arr", append_missing_elements=[1]))
    new, results = transforms.apply_write(None, w, NOW)
    assert_fields(new, n=3, arr=[1])
    assert [values.kind(r) for r in results] == ["integer_value", "null_value"]
    assert values.equals(results[0], v(3))


def test_transform_only_write_creates_a_missing_document():
    w = WritePb(transform=write.DocumentTransform.pb()(document=NAME, field_transforms=[transform("n", increment=5)]))
    new, results = transforms.apply_write(None, w, NOW)
    assert_fields(new, n=5)


def test_transform_on_a_nested_path_creates_the_maps():
    new, _ = transforms.apply_write(fields(m={"k": 1}), update({}, [], transform("m.c.n", increment=1)), NOW)
    assert_fields(new, m={"k": 1, "c": {"n": 1}})


@pytest.mark.parametrize(
    "current, operand, expected",
    [(None, 5, 5), ("text", 5, 5), (1, 2, 3), (1, 0.5, 1.5), (1.5, 1, 2.5),
     (INT64_MAX, 1, INT64_MAX), (INT64_MIN, -1, INT64_MIN), (INT64_MAX, INT64_MIN, -1),
     (float("inf"), float("-inf"), float("nan"))],
)
def test_increment_adds_saturating_integers_and_promoting_to_double(current, operand, expected):
    start = fields() if current is None else fields(n=current)
    new, results = transforms.apply_write(start, update({}, [], transform("n", increment=operand)), NOW)
    assert values.equals(new["n"], v(expected))
    assert values.kind(new["n"]) == values.kind(v(expected))  # 1 + 0.5 is a double, 1 + 2 stays an integer
    assert values.equals(results[0], v(expected))


@pytest.mark.parametrize(
    "kind, current, operand, expected",
    [("maximum", None, 3, 3), ("maximum", "s", 3, 3), ("maximum", 1, 3, 3), ("maximum", 3, 1, 3),
     ("maximum", 3, 3.0, 3), ("maximum", 2.5, 3, 3), ("maximum", 0.0, 0, 0.0),
     ("maximum", 1, float("nan"), float("nan")),
     ("maximum", float("nan"), 1, float("nan")),
     ("minimum", 1, 3, 1), ("minimum", 3, 1, 1), ("minimum", 3.0, 3, 3.0), ("minimum", 2, 1.5, 1.5),
     ("minimum", -0.0, 0, -0.0), ("minimum", 1, float("nan"), float("nan"))],
)
def test_maximum_and_minimum_keep_the_stored_value_on_ties_and_nan_wins(kind, current, operand, expected):
    start = fields() if current is None else fields(n=current)
    new, results = transforms.apply_write(start, update({}, [], transform("n", **{kind: operand})), NOW)
    assert values.kind(new["n"]) == values.kind(v(expected))
    assert values.equals(new["n"], v(expected))
    assert values.equals(results[0], new["n"])


@pytest.mark.parametrize(
    "current, elements, expected",
    [(None, [1, 2], [1, 2]), ("scalar", [1], [1]), ([1, 2], [2.0, 3, 3], [1, 2, 3]),
     ([None], [None, float("nan")], [None, float("nan")]), ([float("nan")], [float("nan")], [float("nan")])],
)
def test_append_missing_elements_adds_each_value_not_already_present(current, elements, expected):
    start = fields() if current is None else fields(a=current)
    new, results = transforms.apply_write(start, update({}, [], transform("a", append_missing_elements=elements)), NOW)
    assert_fields(new, a=expected)
    assert values.kind(results[0]) == "null_value"


@pytest.mark.parametrize(
    "current, elements, expected",
    [(None, [1], []), ("scalar", [1], []), ([1, 2, 1, 3], [1.0], [2, 3]),
     ([None, float("nan"), 4], [None, float("nan")], [4]),
     ([{"k": 1}, {"k": 2}], [{"k": 1}], [{"k": 2}])],
)
def test_remove_all_from_array_removes_every_equal_value(current, elements, expected):
    start = fields() if current is None else fields(a=current)
    new, _ = transforms.apply_write(start, update({}, [], transform("a", remove_all_from_array=elements)), NOW)
    assert values.kind(new["a"]) == "array_value"  # an emptied array stays an array
    assert_fields(new, a=expected)


def test_transform_with_a_non_numeric_operand_is_invalid_argument():
    with pytest.raises(InvalidArgument, match="increment of 'n' needs an integer or double"):
        transforms.apply_write(None, update({}, [], transform("n", increment="1")), NOW)


@pytest.mark.parametrize("mask, path", [(["n"], "n"), (["m.n"], "m")])
def test_transform_on_a_masked_path_or_above_one_is_invalid_argument(mask, path):
    with pytest.raises(InvalidArgument, match="both updated and transformed"):
        transforms.apply_write(None, update({"m": {"n": 1}, "n": 1}, mask, transform(path, increment=1)), NOW)


CLIENT_WRITES = {
    "update with a nested server timestamp": (
        lambda: _helpers.pbs_for_update(NAME, {"m": {"a": 1, "t": SERVER_TIMESTAMP}}, None),
        {"m": {"a": 1, "t": "TS"}, "keep": 0, "n": 5}),
    "update of dotted paths": (
        lambda: _helpers.pbs_for_update(NAME, {"m.a": 1, "m.t": SERVER_TIMESTAMP}, None),
        {"m": {"a": 1, "t": "TS", "old": 0}, "keep": 0, "n": 5}),
    "update with a delete and an increment": (
        lambda: _helpers.pbs_for_update(NAME, {"keep": DELETE_FIELD, "n": Increment(2)}, None),
        {"m": {"old": 0}, "n": 7}),
    "set with a nested server timestamp": (
        lambda: _helpers.pbs_for_set_no_merge(NAME, {"m": {"a": 1, "t": SERVER_TIMESTAMP}}),
        {"m": {"a": 1, "t": "TS"}}),
    "merge of named fields": (
        lambda: _helpers.pbs_for_set_with_merge(NAME, {"m": {"a": 1, "t": SERVER_TIMESTAMP}, "x": 2}, merge=["m"]),
        {"m": {"a": 1, "t": "TS"}, "keep": 0, "n": 5}),
    "merge of transforms only": (
        lambda: _helpers.pbs_for_set_with_merge(NAME, {"n": Increment(2), "arr": ArrayUnion([1])}, merge=True),
        {"m": {"old": 0}, "keep": 0, "n": 7, "arr": [1]}),
}


@pytest.mark.parametrize("case", CLIENT_WRITES)
def test_writes_as_the_client_builds_them_apply_as_production_does(case):
    build, expected = CLIENT_WRITES[case]
    current = fields(m={"old": 0}, keep=0, n=5)
    for w in build():
        current, _ = transforms.apply_write(current, write.Write.pb(w), NOW)
    stamp = ValuePb(timestamp_value=timestamp_pb2.Timestamp(seconds=NOW.seconds, nanos=123_456_000))
    expected_value = v(expected)
    if "t" in expected.get("m", {}):  # "TS" stands for the request time
        expected_value.map_value.fields["m"].map_value.fields["t"].CopyFrom(stamp)
    assert values.equals(as_python(current), expected_value), as_python(current)


def test_two_transforms_on_the_same_field_are_invalid_argument():
    w = update({}, [], transform("n", increment=1), transform("n", maximum=1))
    with pytest.raises(InvalidArgument, match="overlapping"):
        transforms.apply_write(None, w, NOW)


def test_array_element_that_is_an_array_is_invalid_argument():
    t = FieldTransformPb(field_path="a")
    t.append_missing_elements.values.add().array_value.SetInParent()
    with pytest.raises(InvalidArgument, match="an array cannot contain an array"):
        transforms.apply_write(None, update({}, [], t), NOW)


def test_nan_increment_result_is_a_double_nan():
    new, _ = transforms.apply_write(fields(n=1), update({}, [], transform("n", increment=float("nan"))), NOW)
    assert math.isnan(new["n"].double_value)


def test_vector_values_are_accepted_although_their_map_keys_look_reserved():
    new, _ = transforms.apply_write(None, update({"emb": Vector([0.5, 1.0])}), NOW)
    assert values.is_vector(new["emb"])


def test_pipeline_expression_value_in_a_document_is_invalid_argument():
    w = update({})
    w.update.fields["a"].field_reference_value = "b"
    with pytest.raises(InvalidArgument, match="cannot be stored"):
        transforms.apply_write(None, w, NOW)


# -- robustness: malformed writes are refused, never crash ------------------------------------------------------

PATHS = ["n", "m.k", "arr", "`a.b`", "__name__"] * 3 + ["", "a..b", "`x", "m.__x__"]
OPERANDS = [v(x) for x in (1, 2.5, float("nan"), None, "s", [1, 1.0], {"k": [None]}, INT64_MAX)] + [ValuePb()]


@st.composite
def writes(draw) -> WritePb:
    kind = draw(st.sampled_from(["update", "update", "masked", "delete", "transform", "none"]))
    w = WritePb()
    if kind == "delete":
        w.delete = NAME
    elif kind == "transform":
        w.transform.document = NAME
    elif kind != "none":
        w.update.name = NAME
        for name in draw(st.lists(st.sampled_from(["n", "m", "arr", "__x__", ""]), max_size=3)):
            w.update.fields[name].CopyFrom(draw(st.sampled_from(OPERANDS)))
        if kind == "masked":
            w.update_mask.field_paths.extend(draw(st.lists(st.sampled_from(PATHS), max_size=3)))
    target = w.transform.field_transforms if kind == "transform" else w.update_transforms
    for _ in range(draw(st.integers(0, 3))):
        t = target.add(field_path=draw(st.sampled_from(PATHS)))
        which = draw(st.sampled_from(["set_to_server_value", "increment", "maximum", "minimum",
                                      "append_missing_elements", "remove_all_from_array", "none"]))
        if which == "set_to_server_value":
            t.set_to_server_value = draw(st.integers(0, 2))
        elif which in ("append_missing_elements", "remove_all_from_array"):
            getattr(t, which).values.extend(draw(st.lists(st.sampled_from(OPERANDS), max_size=3)))
            getattr(t, which).SetInParent()
        elif which != "none":
            getattr(t, which).CopyFrom(draw(st.sampled_from(OPERANDS)))
    return w


@settings(max_examples=200, deadline=None, derandomize=True)  # the same examples on every run and in CI
@given(st.sampled_from([None, {}, {"n": 1}, {"m": {"k": 2}, "arr": [1]}]), writes())
def test_any_write_gives_fields_and_one_result_per_transform_or_invalid_argument(start, w):
    current = None if start is None else fields(**start)
    try:
        new, results = transforms.apply_write(current, w, NOW)
    except InvalidArgument as error:
        assert error.message
        event("refused")
        return
    event("applied")
    n_transforms = len(w.transform.field_transforms) + len(w.update_transforms)
    assert len(results) == n_transforms
    if new is not None:
        transforms.validate_fields(new)  # what a write produces is itself a valid document
