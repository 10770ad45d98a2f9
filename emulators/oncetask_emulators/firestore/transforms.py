"""One Write applied to one document's fields: update (replace or masked merge), delete, and field transforms.

Pure: preconditions are the store's business (it knows existence and update_time); this module only decides
what the fields become and what each transform reports back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping

from . import paths, values, vectors
from .errors import InvalidArgument
from .protos import FieldTransformPb, WritePb
from .protos import Timestamp as TimestampPb

ValuePb = values.ValuePb
Fields = dict[str, ValuePb]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 20


def apply_write(
    current: Fields | None, w: WritePb, request_time: TimestampPb
) -> tuple[Fields | None, list[ValuePb]]:
    """The fields after `w` (None when it deletes) and its transform results, in the order of its transforms."""
    operation = w.WhichOneof("operation")
    if operation == "delete":
        if w.update_transforms:
            raise InvalidArgument("A delete cannot carry update_transforms.")
        return None, []
    if operation == "update":
        if w.HasField("update_mask"):
            masked = [paths.parse_field_path(p) for p in w.update_mask.field_paths]
            _check_no_overlap(masked, "update_mask")
            fields = _merge(current or {}, w.update.fields, masked)
        else:
            masked = None
            validate_fields(w.update.fields)
            fields = _copy(w.update.fields)
        transforms = list(w.update_transforms)
        _check_transform_paths(transforms, masked)
        return fields, apply_transforms(fields, transforms, request_time)
    if operation == "transform":
        # A transform-only write creates the document if it is missing, like production.
        fields = _copy(current or {})
        transforms = list(w.transform.field_transforms)
        _check_transform_paths(transforms, None)
        return fields, apply_transforms(fields, transforms, request_time)
    raise InvalidArgument("A write must have one of update, delete or transform.")


def apply_transforms(fields: Fields, transforms: Iterable[FieldTransformPb], request_time: TimestampPb
                     ) -> list[ValuePb]:
    """Apply transforms to `fields` in place, in order; return one result per transform."""
    results = []
    for t in transforms:
        path = paths.parse_field_path(t.field_path)
        new, result = transform_value(paths.get_field(fields, path), t, request_time)
        _set(fields, path, new)
        results.append(result)
    return results


def transform_value(current: ValuePb | None, t: FieldTransformPb, request_time: TimestampPb
                    ) -> tuple[ValuePb, ValuePb]:
    """(new field value, transform result) of one field transform applied to the field's current value."""
    kind = t.WhichOneof("transform_type")
    if kind == "set_to_server_value":
        if t.set_to_server_value != FieldTransformPb.ServerValue.REQUEST_TIME:
            raise InvalidArgument(f"Unsupported server value {t.set_to_server_value} for {t.field_path!r}.")
        stamp = TimestampPb(seconds=request_time.seconds, nanos=request_time.nanos // 1000 * 1000)
        value = ValuePb(timestamp_value=stamp)
        return value, value
    if kind in ("increment", "maximum", "minimum"):
        operand = getattr(t, kind)
        if not values.is_number(operand):
            raise InvalidArgument(
                f"{kind} of {t.field_path!r} needs an integer or double operand, got {values.describe(operand)}."
            )
        if current is None or not values.is_number(current):
            value = _copy_value(operand)
        elif kind == "increment":
            value = _increment(current, operand)
        else:
            value = _extreme(current, operand, want=1 if kind == "maximum" else -1)
        return value, value
    if kind in ("append_missing_elements", "remove_all_from_array"):
        elements = list(getattr(t, kind).values)
        for e in elements:
            if values.kind(e) == "array_value":
                raise InvalidArgument(f"{kind} of {t.field_path!r}: an array cannot contain an array.")
            validate_value(e, 1)
        is_array = current is not None and values.kind(current) == "array_value"
        existing = list(current.array_value.values) if is_array else []  # type: ignore[union-attr]
        if kind == "append_missing_elements":
            result = existing[:]
            for e in elements:
                if not any(values.equals(e, x) for x in result):
                    result.append(e)
        else:
            result = [x for x in existing if not any(values.equals(x, e) for e in elements)]
        value = ValuePb()
        value.array_value.values.extend(result)
        value.array_value.SetInParent()  # an empty array is still an array, not null
        return value, ValuePb(null_value=0)
    raise InvalidArgument(f"Field transform on {t.field_path!r} has no transform type.")


def _increment(current: ValuePb, operand: ValuePb) -> ValuePb:
    a, b = values.number(current), values.number(operand)
    if isinstance(a, int) and isinstance(b, int):
        # Production saturates integer overflow at the largest magnitude int64 (see FieldTransform.increment).
        return ValuePb(integer_value=min(INT64_MAX, max(INT64_MIN, a + b)))
    return ValuePb(double_value=float(a) + float(b))


def _extreme(current: ValuePb, operand: ValuePb, want: int) -> ValuePb:
    """maximum (want=1) or minimum (want=-1): NaN wins; equal operands (3 vs 3.0, 0 vs -0.0) keep the stored
    value; otherwise the larger/smaller operand with its own type."""
    if values.is_nan(current):
        return _copy_value(current)
    if values.is_nan(operand):
        return _copy_value(operand)
    a, b = values.number(current), values.number(operand)
    if a == b or (b > a) != (want > 0):
        return _copy_value(current)
    return _copy_value(operand)


def _check_no_overlap(masked: list[tuple[str, ...]], what: str) -> None:
    ordered = sorted(masked)
    for a, b in zip(ordered, ordered[1:]):
        if b[: len(a)] == a:
            raise InvalidArgument(
                f"{what} has overlapping field paths {paths.format_field_path(a)!r} and "
                f"{paths.format_field_path(b)!r}."
            )


def _check_transform_paths(transforms: list[FieldTransformPb], masked: list[tuple[str, ...]] | None) -> None:
    transformed = [paths.parse_field_path(t.field_path) for t in transforms]
    for path in transformed:
        if path[0] == paths.NAME_FIELD:
            raise InvalidArgument("Cannot transform the __name__ field.")
        for segment in path:
            paths.validate_field_name(segment)
    _check_no_overlap(transformed, "A write's field transforms")
    for path in transformed:
        for m in masked or ():
            # A transform below a masked path is what the client sends for {"m": {"a": 1, "t": SERVER_TIMESTAMP}}
            # (mask "m", transform "m.t"): the update sets m, then the transform adds m.t. The same path, or a
            # transform of a map whose part the update sets, is a conflict.
            if m[: len(path)] == path:
                raise InvalidArgument(
                    f"Field {paths.format_field_path(path)!r} cannot be both updated and transformed in one write."
                )


def _merge(current: Mapping[str, ValuePb], given: Mapping[str, ValuePb], masked: list[tuple[str, ...]]) -> Fields:
    """`current` with each masked path set from `given`, or removed where `given` lacks it."""
    fields = _copy(current)
    for path in masked:
        value = paths.get_field(given, path)
        if value is None:
            _delete(fields, path)
        else:
            for segment in path:
                paths.validate_field_name(segment)
            validate_value(value, len(path))
            _set(fields, path, _copy_value(value))
    return fields


def _set(fields: Fields, path: tuple[str, ...], value: ValuePb) -> None:
    """Set a nested field, creating (or replacing non-map values by) maps along the way."""
    target = fields
    for segment in path[:-1]:
        inner = target.get(segment)
        if inner is None or values.kind(inner) != "map_value":
            empty_map = ValuePb()
            empty_map.map_value.SetInParent()
            _put(target, segment, empty_map)
        target = target[segment].map_value.fields  # type: ignore[assignment]
    _put(target, path[-1], value)


def _put(target: MutableMapping[str, ValuePb], key: str, value: ValuePb) -> None:
    # The top level is a plain dict; nested maps are protobuf maps, which refuse assignment of messages.
    if isinstance(target, dict):
        target[key] = value
    else:
        target[key].CopyFrom(value)


def _delete(fields: Fields, path: tuple[str, ...]) -> None:
    target = fields
    for segment in path[:-1]:
        inner = target.get(segment)
        if inner is None or values.kind(inner) != "map_value":
            return
        target = inner.map_value.fields  # type: ignore[assignment]
    if path[-1] in target:
        del target[path[-1]]


def _copy_value(v: ValuePb) -> ValuePb:
    out = ValuePb()
    out.CopyFrom(v)
    return out


def _copy(fields: Mapping[str, ValuePb]) -> Fields:
    return {name: _copy_value(v) for name, v in fields.items()}


def validate_fields(fields: Mapping[str, ValuePb], depth: int = 0) -> None:
    """Field names and values a document may hold."""
    for name, value in fields.items():
        paths.validate_field_name(name)
        validate_value(value, depth + 1)


def validate_value(v: ValuePb, depth: int) -> None:
    """No arrays directly inside arrays; maps not nested deeper than production allows; valid map keys."""
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"A document cannot have more than {MAX_DEPTH} levels of nesting.")
    values.type_rank(v)  # rejects the expression kinds no document may hold
    kind = values.kind(v)
    if kind == "array_value":
        for element in v.array_value.values:
            if values.kind(element) == "array_value":
                raise InvalidArgument("Cannot have an array value directly inside an array value.")
            validate_value(element, depth + 1)
    elif kind == "map_value" and values.is_vector(v):
        vectors.validate_vector_value(v)
    elif kind == "map_value":
        validate_fields(v.map_value.fields, depth)
