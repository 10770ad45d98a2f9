"""Fault injection for the emulators, off unless asked for, reproducible from a seed.

A spec is a comma-separated list of rules, each `NAME[:ARG]:RATE`:

    UNAVAILABLE:0.05,ABORTED:0.02,DEADLINE_EXCEEDED:0.01,DELAY:50ms:0.1

`NAME` is a gRPC status code name (the call fails with that code before it reaches the service) or `DELAY`
(the call is held for ARG, e.g. `50ms` or `1.5s`, then served). RATE is the share of calls, 0..1. Rules are
drawn independently per call in the order given; the first failure wins, delays add up.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass

import grpc

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)$")


class FaultSpecError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    name: str
    rate: float
    arg: str | None = None

    @property
    def delay_seconds(self) -> float:
        m = _DURATION.match(self.arg or "")
        if not m:
            raise FaultSpecError(f"{self.name}: duration {self.arg!r} is not like 50ms or 1.5s")
        value = float(m.group(1))
        return value / 1000 if m.group(2) == "ms" else value


def parse_spec(spec: str, extra_names: frozenset[str] = frozenset({"DELAY"})) -> list[Rule]:
    """Parse a fault spec; raise FaultSpecError naming the bad rule."""
    rules: list[Rule] = []
    for raw in filter(None, (part.strip() for part in (spec or "").split(","))):
        parts = raw.split(":")
        if len(parts) not in (2, 3):
            raise FaultSpecError(f"fault rule {raw!r} is not NAME:RATE or NAME:ARG:RATE")
        name = parts[0].upper()
        if name not in extra_names and name not in grpc.StatusCode.__members__:
            raise FaultSpecError(f"fault rule {raw!r}: {name} is neither a gRPC status code nor one of {sorted(extra_names)}")
        try:
            rate = float(parts[-1])
        except ValueError:
            raise FaultSpecError(f"fault rule {raw!r}: rate {parts[-1]!r} is not a number") from None
        if not 0.0 <= rate <= 1.0:
            raise FaultSpecError(f"fault rule {raw!r}: rate must be between 0 and 1")
        rule = Rule(name=name, rate=rate, arg=parts[1] if len(parts) == 3 else None)
        if name == "DELAY":
            rule.delay_seconds  # validates the duration now, not on the first call
        rules.append(rule)
    return rules


class FaultPlan:
    """Draws, per call, which rules fire. Thread-safe; the same seed and call order give the same faults."""

    def __init__(self, rules: list[Rule], seed: int = 0):
        self.rules = rules
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.fired: dict[str, int] = {}

    @classmethod
    def from_spec(cls, spec: str, seed: int = 0, extra_names: frozenset[str] = frozenset({"DELAY"})) -> "FaultPlan":
        return cls(parse_spec(spec, extra_names), seed)

    def __bool__(self) -> bool:
        return bool(self.rules)

    def counts(self) -> dict[str, int]:
        """How often each rule fired so far (a copy, safe to read while calls are drawing)."""
        with self._lock:
            return dict(self.fired)

    def draw(self) -> list[Rule]:
        """The rules that fire for one call."""
        if not self.rules:
            return []
        with self._lock:
            fired = [r for r in self.rules if self._rng.random() < r.rate]
            for r in fired:
                self.fired[r.name] = self.fired.get(r.name, 0) + 1
        return fired


class FaultInterceptor(grpc.ServerInterceptor):
    """Applies a FaultPlan to every gRPC call before the service sees it."""

    def __init__(self, plan: FaultPlan):
        self.plan = plan

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        fired = self.plan.draw()
        if handler is None or not fired:
            return handler
        delay = sum(r.delay_seconds for r in fired if r.name == "DELAY")
        failure = next((r for r in fired if r.name != "DELAY"), None)
        if failure is None:
            return _wrap(handler, lambda: time.sleep(delay))

        code = grpc.StatusCode[failure.name]

        def fail(context):
            time.sleep(delay)
            context.abort(code, f"injected fault: {failure.name}")

        return _wrap(handler, None, fail)


def _wrap(handler, before=None, fail=None):
    """Rebuild a method handler so `before()` runs first, or `fail(context)` replaces the call."""

    def unary(behaviour):
        def call(request, context):
            if fail:
                fail(context)
            if before:
                before()
            return behaviour(request, context)

        return call

    def streaming(behaviour):
        def call(request, context):
            if fail:
                fail(context)
            if before:
                before()
            yield from behaviour(request, context)

        return call

    # Handlers are namedtuples (grpc's RpcMethodHandler); replace whichever behaviour this method has.
    return handler._replace(
        unary_unary=handler.unary_unary and unary(handler.unary_unary),
        stream_unary=handler.stream_unary and unary(handler.stream_unary),
        unary_stream=handler.unary_stream and streaming(handler.unary_stream),
        stream_stream=handler.stream_stream and streaming(handler.stream_stream),
    )
