"""`noop`, `test.pipeline` and any other job type of the development tools are never deployed: they live in
oncetask-dev (oncetask_dev.testjobs), which nothing deployed imports; the catalog's bundle (what the reference
deployment ships) serves the catalog's job types only, and `oncetask bundle` refuses an app that includes a
development job type or a project that depends on the development tools at run time."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from oncetask_dev import testjobs
from oncetask_dev.bundle import development_job_types
from oncetask_dev.cli import main

from .test_bundle import CATALOG, GOOD, PYPROJECT, REPO, bundle, bundle_env, project, refused  # noqa: F401

DEPLOYED_SOURCES = (REPO / "functions", CATALOG / "catalog")
DEVELOPMENT_PACKAGES = {"oncetask_dev", "oncetask_emulators"}
TEST_JOB_TYPES = set(testjobs.app.job_types())


def test_the_development_job_types_are_the_ones_this_check_knows() -> None:
    assert {"noop", "test.pipeline"} <= TEST_JOB_TYPES
    assert development_job_types(testjobs.app) == sorted(TEST_JOB_TYPES)


def test_nothing_deployed_imports_the_development_tools() -> None:
    offenders = []
    for root in DEPLOYED_SOURCES:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
                offenders += [f"{path.relative_to(REPO)}: {name}" for name in names
                              if name.split(".")[0] in DEVELOPMENT_PACKAGES]
    assert offenders == []


def test_the_catalogs_bundle_serves_the_catalogs_job_types_only(bundle: Path) -> None:  # noqa: F811 - the fixture
    manifest = json.loads((bundle / "oncetask.json").read_text())
    assert {t["name"] for t in manifest["job_types"]} == {"image.gallery", "image.thumbnails", "sheet.import"}
    requirements = (bundle / "requirements.txt").read_text()
    assert "oncetask-dev" not in requirements and "oncetask[dev]" not in requirements
    # What the deployed main.py serves, imported from the bundle alone (without site's .pth files the checkout's
    # editable oncetask_dev is not importable, as on Cloud Run).
    served = subprocess.run(
        [sys.executable, "-S", "-c", "import importlib.util, json, main; print(json.dumps({'job_types': "
         "sorted(main.app.job_types()), 'dev': importlib.util.find_spec('oncetask_dev') is not None}))"],
        capture_output=True, text=True, timeout=60, cwd=bundle.parent, env=bundle_env(bundle))
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout) == {"job_types": ["image.gallery", "image.thumbnails", "sheet.import"],
                                            "dev": False}


def test_an_app_that_includes_the_test_job_types_is_not_bundled(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    code = GOOD + "\nfrom oncetask_dev import testjobs\napp.include(testjobs.app)\n"
    root, _ = project(tmp_path, PYPROJECT, code)
    out = tmp_path / "out"
    err = refused(capsys, "--project", str(root), "--out", str(out))
    assert "never deployed" in err and "'noop'" in err and "'test.pipeline'" in err
    assert not out.exists()


@pytest.mark.parametrize("dependency", ["oncetask-dev>=0.2", "oncetask[dev]>=0.2", "Oncetask_Dev"])
def test_a_project_that_needs_the_development_tools_at_run_time_is_not_bundled(
        tmp_path: Path, capsys, monkeypatch, dependency: str) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    pyproject = PYPROJECT.replace('"requests>=2.32"]', f'"requests>=2.32", "{dependency}"]')
    root, _ = project(tmp_path, pyproject, GOOD)
    err = refused(capsys, "--project", str(root), "--out", str(tmp_path / "out"))
    assert "never deployed" in err and dependency in err


def test_the_demo_app_is_refused_too(tmp_path: Path, capsys, monkeypatch) -> None:
    """`oncetask dev`'s default app (the catalog with the test job types) is for the local stack only."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert main(["bundle", "--app", "oncetask_dev.demoapp:app", "--project", str(CATALOG),
                 "--out", str(tmp_path / "out")]) == 2
    assert "never deployed" in " ".join(capsys.readouterr().err.split())
