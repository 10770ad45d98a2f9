"""Methods of each rules type and the global functions (`int()`, `math.abs()`, `duration.value()`...).

Each entry takes already-evaluated arguments and returns a value or raises EvalError. Document reads
(`get`, `exists`, `getAfter`, `existsAfter`) need the request and live in evaluator.py.
"""

from __future__ import annotations

import base64
import datetime
import functools
import math
import re
from collections.abc import Callable

from .values import (
    NANOS, Duration, EvalError, LatLng, MapDiff, Path, RSet, Timestamp, check_int, equals, is_number, timestamp_of,
    type_name,
)

Method = Callable[..., object]


@functools.lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise EvalError(f"invalid regular expression {pattern!r}: {error}") from None


def _str(v: object, what: str) -> str:
    if not isinstance(v, str):
        raise EvalError(f"{what} must be a string, got {type_name(v)}")
    return v


def _int(v: object, what: str) -> int:
    if not isinstance(v, int) or type(v) is bool:
        raise EvalError(f"{what} must be an int, got {type_name(v)}")
    return v


def _num(v: object, what: str) -> int | float:
    if not is_number(v):
        raise EvalError(f"{what} must be a number, got {type_name(v)}")
    return v  # type: ignore[return-value]


def _collection(v: object, what: str) -> list:
    """Elements of a list or set argument (hasAll([..]) and hasAll(set) both occur)."""
    if type(v) is list:
        return v  # type: ignore[return-value]
    if type(v) is RSet:
        return v.values()  # type: ignore[union-attr]
    raise EvalError(f"{what} must be a list or set, got {type_name(v)}")


def _set_of(v: object) -> RSet:
    return v if type(v) is RSet else RSet(_collection(v, "argument"))  # type: ignore[return-value]


# -- strings --------------------------------------------------------------------------------------------

def _split(s: str, pattern: object) -> list:
    return _regex(_str(pattern, "split() pattern")).split(s)


def _replace(s: str, pattern: object, replacement: object) -> str:
    return _regex(_str(pattern, "replace() pattern")).sub(_str(replacement, "replace() replacement"), s)


STRING_METHODS: dict[str, tuple[int, Method]] = {
    "size": (0, lambda s: len(s)),
    "lower": (0, lambda s: s.lower()),
    "upper": (0, lambda s: s.upper()),
    "trim": (0, lambda s: s.strip()),
    "matches": (1, lambda s, p: _regex(_str(p, "matches() pattern")).fullmatch(s) is not None),
    "split": (1, _split),
    "replace": (2, _replace),
    "toUtf8": (0, lambda s: s.encode()),
}

# -- lists and sets -----------------------------------------------------------------------------------------


def _has_all(items: list, other: object) -> bool:
    mine = RSet(items)
    return all(x in mine for x in _collection(other, "hasAll() argument"))


def _has_any(items: list, other: object) -> bool:
    mine = RSet(items)
    return any(x in mine for x in _collection(other, "hasAny() argument"))


def _has_only(items: list, other: object) -> bool:
    allowed = _set_of(other)
    return all(x in allowed for x in items)


def _join(items: list, sep: object) -> str:
    sep = _str(sep, "join() separator")
    if not all(isinstance(x, str) for x in items):
        raise EvalError("join() needs a list of strings")
    return sep.join(items)


def _remove_all(items: list, other: object) -> list:
    gone = _set_of(other)
    return [x for x in items if x not in gone]


def _concat(items: list, other: object) -> list:
    if type(other) is not list:
        raise EvalError(f"concat() needs a list, got {type_name(other)}")
    return items + other  # type: ignore[operator]


LIST_METHODS: dict[str, tuple[int, Method]] = {
    "size": (0, lambda xs: len(xs)),
    "hasAll": (1, _has_all),
    "hasAny": (1, _has_any),
    "hasOnly": (1, _has_only),
    "join": (1, _join),
    "concat": (1, _concat),
    "removeAll": (1, _remove_all),
    "toSet": (0, lambda xs: RSet(xs)),
}

SET_METHODS: dict[str, tuple[int, Method]] = {
    "size": (0, lambda s: len(s)),
    "hasAll": (1, lambda s, o: all(x in s for x in _collection(o, "hasAll() argument"))),
    "hasAny": (1, lambda s, o: any(x in s for x in _collection(o, "hasAny() argument"))),
    "hasOnly": (1, lambda s, o: _has_only(s.values(), o)),
    "union": (1, lambda s, o: RSet([*s.values(), *_set_of(o).values()])),
    "intersection": (1, lambda s, o: RSet(x for x in s.values() if x in _set_of(o))),
    "difference": (1, lambda s, o: RSet(x for x in s.values() if x not in _set_of(o))),
}

# -- maps -----------------------------------------------------------------------------------------------------


def _map_get(m: dict, key: object, default: object) -> object:
    """`m.get('a', d)` or, with a list of keys, a nested lookup: `m.get(['a', 'b'], d)`."""
    keys = key if type(key) is list else [key]
    current: object = m
    for k in keys:  # type: ignore[union-attr]
        if type(current) is not dict or not isinstance(k, str) or k not in current:  # type: ignore[operator]
            return default
        current = current[k]  # type: ignore[index]
    return current


def _diff(m: dict, other: object) -> MapDiff:
    if type(other) is not dict:
        raise EvalError(f"diff() needs a map, got {type_name(other)}")
    mine, theirs = m.keys(), other.keys()  # type: ignore[union-attr]
    changed = [k for k in mine & theirs if not equals(m[k], other[k])]  # type: ignore[index]
    unchanged = [k for k in mine & theirs if equals(m[k], other[k])]  # type: ignore[index]
    # m.diff(other): what changes from m to other; keys only in other were added.
    return MapDiff(RSet(theirs - mine), RSet(mine - theirs), RSet(changed), RSet(unchanged))


MAP_METHODS: dict[str, tuple[int, Method]] = {
    "size": (0, lambda m: len(m)),
    "keys": (0, lambda m: list(m.keys())),
    "values": (0, lambda m: list(m.values())),
    "get": (2, _map_get),
    "diff": (1, _diff),
}

MAP_DIFF_METHODS: dict[str, tuple[int, Method]] = {
    "addedKeys": (0, lambda d: d.added),
    "removedKeys": (0, lambda d: d.removed),
    "changedKeys": (0, lambda d: d.changed),
    "unchangedKeys": (0, lambda d: d.unchanged),
    "affectedKeys": (0, lambda d: RSet([*d.added.values(), *d.removed.values(), *d.changed.values()])),
}

# -- time -------------------------------------------------------------------------------------------------------


def _date(t: Timestamp) -> Timestamp:
    return Timestamp(t.nanos - t.nanos % (86_400 * NANOS))


TIMESTAMP_METHODS: dict[str, tuple[int, Method]] = {
    "toMillis": (0, lambda t: t.nanos // 1_000_000),
    "seconds": (0, lambda t: t.nanos // NANOS),
    "nanos": (0, lambda t: t.nanos % NANOS),
    "year": (0, lambda t: t.datetime().year),
    "month": (0, lambda t: t.datetime().month),
    "day": (0, lambda t: t.datetime().day),
    "hours": (0, lambda t: t.datetime().hour),
    "minutes": (0, lambda t: t.datetime().minute),
    "dayOfWeek": (0, lambda t: t.datetime().isoweekday()),
    "dayOfYear": (0, lambda t: t.datetime().timetuple().tm_yday),
    "date": (0, _date),
    "time": (0, lambda t: Duration(t.nanos % (86_400 * NANOS))),
}

def _whole_seconds(d: Duration) -> int:
    """Seconds of a duration, truncated toward zero (integer arithmetic: durations exceed a double's 53 bits)."""
    return d.nanos // NANOS if d.nanos >= 0 else -(-d.nanos // NANOS)


DURATION_METHODS: dict[str, tuple[int, Method]] = {
    "seconds": (0, _whole_seconds),
    "nanos": (0, lambda d: d.nanos - _whole_seconds(d) * NANOS),
}


def _distance(a: LatLng, b: object) -> float:
    if type(b) is not LatLng:
        raise EvalError(f"distance() needs a latlng, got {type_name(b)}")
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)  # type: ignore[union-attr]
    dlat, dlng = lat2 - lat1, math.radians(b.longitude - a.longitude)  # type: ignore[union-attr]
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlng / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))  # meters on a spherical Earth


LATLNG_METHODS: dict[str, tuple[int, Method]] = {
    "latitude": (0, lambda p: p.latitude),
    "longitude": (0, lambda p: p.longitude),
    "distance": (1, _distance),
}

BYTES_METHODS: dict[str, tuple[int, Method]] = {
    "size": (0, lambda b: len(b)),
    "toBase64": (0, lambda b: base64.b64encode(b).decode()),
    "toHexString": (0, lambda b: b.hex().upper()),
}

PATH_METHODS: dict[str, tuple[int, Method]] = {}

METHODS: dict[str, dict[str, tuple[int, Method]]] = {
    "string": STRING_METHODS, "list": LIST_METHODS, "set": SET_METHODS, "map": MAP_METHODS,
    "map_diff": MAP_DIFF_METHODS, "timestamp": TIMESTAMP_METHODS, "duration": DURATION_METHODS,
    "latlng": LATLNG_METHODS, "bytes": BYTES_METHODS, "path": PATH_METHODS,
}
ALL_METHOD_NAMES = frozenset(name for table in METHODS.values() for name in table)

# -- global functions and namespaces ------------------------------------------------------------------------


def _to_int(v: object) -> int:
    if type(v) is bool:
        raise EvalError("int() of a bool")
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise EvalError("int() of a non-finite float")
        return check_int(int(v))
    if isinstance(v, str):
        try:
            return check_int(int(v.strip()))
        except ValueError:
            raise EvalError(f"int() cannot parse {v!r}") from None
    raise EvalError(f"int() of a {type_name(v)}")


def _to_float(v: object) -> float:
    if type(v) is bool:
        raise EvalError("float() of a bool")
    if is_number(v):
        return float(v)  # type: ignore[arg-type]
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            raise EvalError(f"float() cannot parse {v!r}") from None
    raise EvalError(f"float() of a {type_name(v)}")


def _to_string(v: object) -> str:
    if v is None:
        return "null"
    if type(v) is bool:
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return str(v) if not isinstance(v, float) else repr(float(v))
    if isinstance(v, Path):
        return str(v)
    raise EvalError(f"string() of a {type_name(v)}")


def _to_path(v: object) -> Path:
    if isinstance(v, Path):
        return v
    return Path(tuple(p for p in _str(v, "path()").split("/") if p))


GLOBAL_FUNCTIONS: dict[str, tuple[int, Method]] = {
    "int": (1, _to_int),
    "float": (1, _to_float),
    "string": (1, _to_string),
    "path": (1, _to_path),
    "debug": (1, lambda v: v),
}
DOCUMENT_FUNCTIONS = {"get": 1, "exists": 1, "getAfter": 1, "existsAfter": 1}

_UNITS = {"w": 7 * 86_400 * NANOS, "d": 86_400 * NANOS, "h": 3_600 * NANOS, "m": 60 * NANOS, "s": NANOS,
          "ms": 1_000_000, "ns": 1}


def _duration_value(magnitude: object, unit: object) -> Duration:
    unit = _str(unit, "duration.value() unit")
    if unit not in _UNITS:
        raise EvalError(f"duration.value() unit must be one of {', '.join(_UNITS)}, got {unit!r}")
    return Duration(check_int(round(_num(magnitude, "duration.value() magnitude") * _UNITS[unit])))


def _duration_time(h: object, m: object, s: object, ns: object) -> Duration:
    total = ((_int(h, "hours") * 60 + _int(m, "minutes")) * 60 + _int(s, "seconds")) * NANOS + _int(ns, "nanos")
    return Duration(total)


def _timestamp_date(y: object, m: object, d: object) -> Timestamp:
    try:
        day = datetime.datetime(_int(y, "year"), _int(m, "month"), _int(d, "day"), tzinfo=datetime.timezone.utc)
    except ValueError as error:
        raise EvalError(f"timestamp.date(): {error}") from None
    return timestamp_of(day)


def _round(x: object) -> int | float:
    x = _num(x, "math.round()")
    if isinstance(x, int):
        return x
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def _math_float(fn: Callable[[float], float]) -> Method:
    def call(x: object) -> object:
        try:
            return fn(_num(x, "math argument"))
        except (ValueError, OverflowError) as error:
            raise EvalError(f"math: {error}") from None
    return call


def _latlng(lat: object, lng: object) -> LatLng:
    lat, lng = float(_num(lat, "latitude")), float(_num(lng, "longitude"))
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise EvalError("latlng.value(): latitude or longitude out of range")
    return LatLng(lat, lng)


NAMESPACE_FUNCTIONS: dict[str, dict[str, tuple[int, Method]]] = {
    "math": {
        "abs": (1, lambda x: abs(_num(x, "math.abs()"))),
        "ceil": (1, _math_float(lambda x: math.ceil(x) if math.isfinite(x) else x)),
        "floor": (1, _math_float(lambda x: math.floor(x) if math.isfinite(x) else x)),
        "round": (1, _round),
        "sqrt": (1, _math_float(math.sqrt)),
        "pow": (2, lambda a, b: _math_float(lambda x: math.pow(x, _num(b, "math.pow() exponent")))(a)),
        "isInfinite": (1, lambda x: math.isinf(_num(x, "math.isInfinite()"))),
        "isNaN": (1, lambda x: math.isnan(_num(x, "math.isNaN()"))),
    },
    "duration": {
        "value": (2, _duration_value),
        "time": (4, _duration_time),
        "abs": (1, lambda d: Duration(abs(d.nanos)) if type(d) is Duration else _bad("duration.abs()", d)),
    },
    "timestamp": {
        "date": (3, _timestamp_date),
        "value": (1, lambda ms: Timestamp(_int(ms, "timestamp.value()") * 1_000_000)),
    },
    "latlng": {"value": (2, _latlng)},
}
GLOBAL_VARIABLES = frozenset(["request", "resource", *NAMESPACE_FUNCTIONS])


def _bad(what: str, v: object) -> object:
    raise EvalError(f"{what} of a {type_name(v)}")


__all__ = ["METHODS", "ALL_METHOD_NAMES", "GLOBAL_FUNCTIONS", "DOCUMENT_FUNCTIONS", "NAMESPACE_FUNCTIONS",
           "GLOBAL_VARIABLES"]
