"""The deployed source is the bundle (`oncetask bundle`, which writes its own requirements.txt from pyproject.toml:
tests/local/test_bundle.py); nothing deployed may import development-only code."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "functions"
DEV_ONLY = {"oncetask_emulators", "oncetask_dev", "rich", "hypothesis", "pytest", "selenium"}


def test_nothing_under_functions_imports_development_only_code() -> None:
    offenders = []
    for path in FUNCTIONS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in DEV_ONLY]
    assert offenders == []


def test_no_second_requirements_file_beside_the_bundles() -> None:
    """functions/ is not deployed as it is (its main.py imports the catalog, which lives elsewhere): the bundle's
    requirements.txt is the only one, so there is no copy to keep in step."""
    assert not (FUNCTIONS / "requirements.txt").exists()
