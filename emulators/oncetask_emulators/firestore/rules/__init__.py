"""Firestore security rules for the emulator: load a rules file, and decide end users' requests with it.

    parser.py / checks.py   rules text -> checked syntax tree (RulesSyntaxError with line and column)
    evaluator.py            expressions, with builtins.py (methods, global functions) and values.py
    matching.py             which match blocks apply to a document path, and their wildcards
    symbolic.py             list rules proved from a query's filters ("rules are not filters")
    ruleset.py              a loaded file's decisions
    auth.py / gate.py       who is calling, and the service's one entry point (the cheap questions)
    enforce.py              the deciding behind the gate, loaded with the first rules
    registry.py / endpoint.py   rules per project, and the HTTP endpoint that replaces them
"""

from __future__ import annotations

import importlib

# Imported on first use (PEP 562), so that the emulator's start, which needs only the gate, the registry and
# auth.py, does not load the parser and the evaluator: they come with the first rules.
_EXPORTS = {
    "CALL_METADATA": "auth", "Caller": "auth", "RulesGate": "gate", "RulesRegistry": "registry",
    "Decision": "ruleset", "Ruleset": "ruleset", "RulesSyntaxError": "syntax",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
