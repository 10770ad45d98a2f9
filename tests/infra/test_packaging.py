"""The deployed source: functions/requirements.txt is what Cloud Functions installs, pyproject.toml what we test
with. They must name the same runtime dependencies, and nothing deployed may import development-only code."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
DEV_ONLY = {"oncetask_emulators", "oncetask_dev", "rich", "hypothesis", "pytest", "selenium"}


def _requirement_lines(lines: list[str]) -> set[str]:
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def test_requirements_txt_equals_the_runtime_dependencies_of_oncetask_and_of_the_deployed_app() -> None:
    runtime = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    catalog = tomllib.loads((REPO / "examples" / "catalog" / "pyproject.toml").read_text())["project"]["dependencies"]
    app = {requirement for requirement in catalog if not requirement.startswith("oncetask")}  # shipped as source
    deployed = _requirement_lines((FUNCTIONS / "requirements.txt").read_text().splitlines())
    assert deployed == runtime | app


def test_nothing_under_functions_imports_development_only_code() -> None:
    offenders = []
    for path in FUNCTIONS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in DEV_ONLY]
    assert offenders == []
