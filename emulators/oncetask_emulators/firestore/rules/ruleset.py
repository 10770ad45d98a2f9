"""A loaded rules file and the decisions it makes: may this method touch this document, or run this query.

A request is allowed when any `allow` statement for its method, in any `match` block whose full path matches
the document, evaluates to true; an error in a condition makes that statement false (production's rule).
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field

from . import checks, matching, parser
from .evaluator import Evaluator, Reads
from .symbolic import Branch, QueryResource
from .syntax import Allow, RulesFile
from .values import EvalError


@dataclass
class Decision:
    allowed: bool
    reasons: list[str] = field(default_factory=list)  # why each candidate statement failed (for the log)

    def explain(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "no allow statement matches"


class Ruleset:
    """Parsed, checked and flattened rules; immutable and shared by all requests of a project."""

    def __init__(self, rules: RulesFile):
        self.rules = rules
        self.source = rules.source
        self.file = rules.file
        self.version = rules.version
        self.flat = matching.flatten(rules.matches)

    @classmethod
    def parse(cls, source: str, file: str = "firestore.rules") -> Ruleset:
        """Load rules, or raise RulesSyntaxError with the line and column of the first problem."""
        rules = parser.parse(source, file)
        checks.check(rules)
        return cls(rules)

    def decide(self, method: str, items: tuple, variables: dict, reads: Reads,
               branch: Branch | None = None) -> Decision:
        """Whether `method` is allowed on the document at path `items` (segments after the leading '/').
        `variables` holds `request` and `resource`; for a list, `branch` describes the documents the query
        can return and `items` holds placeholders for what it leaves open."""
        reasons: list[str] = []
        evaluator = Evaluator(reads)
        for flat in self.flat:
            allows = flat.allows.get(method)
            if not allows:
                continue
            bindings = matching.match_flat(flat, items, self.version)
            if bindings is None:
                continue
            if branch is not None:
                bindings = {k: _bind_for_branch(v, branch) for k, v in bindings.items()}
            env = {**bindings, **variables}
            for allow in allows:
                if _allows(allow, env, evaluator, method, reasons):
                    return Decision(True)
        return Decision(False, reasons)

    def decide_query(self, items: tuple, branches: list[Branch], variables: dict, reads: Reads) -> Decision:
        """A list is allowed only if every branch of the query is: see symbolic.py."""
        for branch in branches:
            decision = self.decide("list", items, {**variables, "resource": QueryResource(branch)}, reads, branch)
            if not decision.allowed:
                return decision
        return Decision(True)


def _bind_for_branch(value: object, branch: Branch) -> object:
    """A wildcard bound to the query's open document ID is that ID when the query fixes `__name__`."""
    if value is matching.ANY_ID:
        name = branch.equal.get(("__name__",))
        if name is not None:
            return name.segments[-1]  # type: ignore[attr-defined]
    return value


def _allows(allow: Allow, env: dict, evaluator: Evaluator, method: str, reasons: list[str]) -> bool:
    if allow.condition is None:
        return True
    where = f"for '{method}' @ L{allow.line}"
    try:
        if evaluator.condition(allow.condition, env):
            return True
        reasons.append(f"false {where}")
    except EvalError as error:
        reasons.append(f"{error} {where}")
    except Exception as error:  # noqa: BLE001 - a bug in the evaluator denies (never allows) and is reported
        traceback.print_exc(file=sys.stderr)
        reasons.append(f"internal error {type(error).__name__}: {error} {where}")
    evaluator.depth = 0
    return False
