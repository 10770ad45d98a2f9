"""Which rules apply to which project: an optional default (`--rules`) and per-project replacements loaded
at run time through the HTTP side, as the official emulator's `PUT /emulator/v1/projects/{p}:securityRules`.
No rules for a project: every request is allowed, as before rules existed."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parser and evaluator load with the first rules, not with the emulator
    from .ruleset import Ruleset


class RulesRegistry:
    def __init__(self, default: Ruleset | None = None):
        self.default = default
        self._projects: dict[str, Ruleset] = {}
        self._lock = threading.Lock()

    def for_project(self, project: str) -> Ruleset | None:
        return self._projects.get(project, self.default)

    def replace(self, project: str, ruleset: Ruleset) -> None:
        with self._lock:
            self._projects[project] = ruleset

    def reset(self, project: str) -> None:
        """Back to the default rules (or none)."""
        with self._lock:
            self._projects.pop(project, None)
