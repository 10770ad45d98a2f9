"""`--target-fault`: make a seeded share of dispatches look failed or slow, to test handlers under trouble.

    FAIL:RATE        the attempt counts as answered 503 without the target being called (an overloaded front end
                     that turned the request away: the handler never saw it, Cloud Tasks saw a response)
    SLOW:DUR:RATE    the request waits DUR (e.g. 2s, 150ms) before it is sent; the wait counts against the
                     dispatch deadline, so a long one turns into DEADLINE_EXCEEDED without calling
"""

from __future__ import annotations

from dataclasses import dataclass

from ..faults import FaultPlan, FaultSpecError, parse_spec

NAMES = frozenset({"FAIL", "SLOW"})


@dataclass(frozen=True)
class Draw:
    fail: bool = False
    delay: float = 0.0


class TargetFaults:
    def __init__(self, spec: str = "", seed: int = 0):
        rules = parse_spec(spec, extra_names=NAMES)
        for rule in rules:
            if rule.name not in NAMES:
                raise FaultSpecError(f"target fault {rule.name} is not one of {sorted(NAMES)}")
            if rule.name == "SLOW":
                rule.delay_seconds  # validates the duration now
            elif rule.arg is not None:
                raise FaultSpecError(f"target fault FAIL takes no argument, got {rule.arg!r}")
        self.plan = FaultPlan(rules, seed)

    def draw(self) -> Draw:
        fired = self.plan.draw()
        if not fired:
            return Draw()
        return Draw(fail=any(r.name == "FAIL" for r in fired),
                    delay=sum(r.delay_seconds for r in fired if r.name == "SLOW"))

    @property
    def fired(self) -> dict[str, int]:
        return dict(self.plan.fired)
