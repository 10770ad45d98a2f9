"""The HTTP side's rules endpoint, shaped like the official emulator's:

    PUT    /emulator/v1/projects/{p}:securityRules   {"rules": {"files": [{"name": ..., "content": "..."}]}}
    GET    /emulator/v1/projects/{p}:securityRules   the project's rules (ours; 404 when none)
    DELETE /emulator/v1/projects/{p}:securityRules   back to the --rules default (ours)

A PUT whose rules do not load answers 400 with the problem as an "issue" (line, column, description) and
keeps the previous rules; with `"ignore_errors": true` (what firebase-tools sends) it answers 200 with the
issues instead, still keeping the previous rules.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

from .registry import RulesRegistry
from .ruleset import Ruleset
from .syntax import RulesSyntaxError

_PATH = re.compile(r"^/emulator/v1/projects/([^/:]+):securityRules/?$")


def handle(method: str, url_path: str, body: bytes, registry: RulesRegistry) -> tuple[int, dict] | None:
    """(status, JSON body) for a rules request, or None when the path is not the rules endpoint."""
    m = _PATH.match(unquote(url_path))
    if m is None:
        return None
    project = m.group(1)
    if method == "GET":
        ruleset = registry.for_project(project)
        if ruleset is None:
            return 404, _error(404, f"no rules are loaded for project {project}", "NOT_FOUND")
        return 200, {"rules": {"files": [{"name": ruleset.file, "content": ruleset.source}]}}
    if method == "DELETE":
        registry.reset(project)
        return 200, {}
    if method != "PUT":
        return 405, _error(405, f"{method} is not supported on {url_path}", "INVALID_ARGUMENT")
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return 400, _error(400, "the request body is not JSON", "INVALID_ARGUMENT")
    files = payload.get("rules", {}).get("files") if isinstance(payload, dict) and isinstance(
        payload.get("rules"), dict) else None
    if not isinstance(files, list) or len(files) != 1 or not isinstance(files[0], dict) or not isinstance(
            files[0].get("content"), str):
        return 400, _error(400, 'expected {"rules": {"files": [{"content": "..."}]}} with exactly one file',
                           "INVALID_ARGUMENT")
    name = files[0].get("name") or "firestore.rules"
    try:
        ruleset = Ruleset.parse(files[0]["content"], str(name))
    except RulesSyntaxError as problem:
        issue = {"sourcePosition": {"fileName": problem.file, "line": problem.line, "column": problem.column},
                 "description": problem.description, "severity": "ERROR"}
        if payload.get("ignore_errors") is True:
            return 200, {"issues": [issue]}
        return 400, {**_error(400, str(problem), "INVALID_ARGUMENT"), "issues": [issue]}
    registry.replace(project, ruleset)
    return 200, {}


def _error(code: int, message: str, status: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}
