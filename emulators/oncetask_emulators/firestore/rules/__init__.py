"""Firestore security rules for the emulator: load a rules file, and decide end users' requests with it.

    parser.py / checks.py   rules text -> checked syntax tree (RulesSyntaxError with line and column)
    evaluator.py            expressions, with builtins.py (methods, global functions) and values.py
    matching.py             which match blocks apply to a document path, and their wildcards
    symbolic.py             list rules proved from a query's filters ("rules are not filters")
    ruleset.py              a loaded file's decisions
    auth.py / gate.py       who is calling, and the service's one entry point
    registry.py / endpoint.py   rules per project, and the HTTP endpoint that replaces them
"""

from .auth import CALL_METADATA, Caller
from .gate import RulesGate
from .registry import RulesRegistry
from .ruleset import Decision, Ruleset
from .syntax import RulesSyntaxError

__all__ = ["CALL_METADATA", "Caller", "Decision", "RulesGate", "RulesRegistry", "Ruleset", "RulesSyntaxError"]
