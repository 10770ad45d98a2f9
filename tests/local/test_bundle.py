"""`oncetask bundle`: a project's app as the directory Cloud Run functions deploy (and the Terraform module
zips): main.py, requirements.txt, the vendored runtime, the project's packages and oncetask.json. Served from
that directory alone, it answers; a project it cannot bundle is refused with exit status 2, nothing written."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import uuid
from pathlib import Path

import pytest
import requests

from fixtures.tasks import wait_until
from oncetask_dev.cli import main

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "examples" / "catalog"
# Third-party packages only: the .pth files that make oncetask and catalog importable from the checkout
# (editable installs) are not read under `python -S`, so the bundle's copies are the only ones found.
SITE_PACKAGES = sysconfig.get_paths()["purelib"]


@pytest.fixture
def bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "path", list(sys.path))  # the command puts the project first
    out = tmp_path / "bundle"
    assert main(["bundle", "--app", "catalog:app", "--project", str(CATALOG), "--out", str(out)]) == 0
    assert "bundle of catalog:app" in capsys.readouterr().out
    return out


def bundle_env(out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**env, "PYTHONPATH": os.pathsep.join([str(out), SITE_PACKAGES]), "PYTHONDONTWRITEBYTECODE": "1"}


def requirement_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def test_a_bundle_holds_the_entry_points_the_runtime_the_project_and_its_manifest(bundle: Path) -> None:
    names = sorted(p.name for p in bundle.iterdir())
    assert names == ["catalog", "main.py", "oncetask", "oncetask.json", "requirements.txt"]
    assert not list(bundle.rglob("__pycache__")) and not list(bundle.rglob("*.pyc"))
    runtime = REPO / "functions" / "oncetask"
    assert sorted(p.name for p in (bundle / "oncetask").glob("*.py")) == sorted(p.name for p in runtime.glob("*.py"))
    assert (bundle / "oncetask" / "static" / "status.html").is_file()
    assert (bundle / "catalog" / "thumbnails.py").read_text() == (CATALOG / "catalog" / "thumbnails.py").read_text()
    assert "from catalog import app" in (bundle / "main.py").read_text()

    # The runtime's dependencies (it is vendored, pip must install what it imports) and the project's, no oncetask.
    root = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    project = tomllib.loads((CATALOG / "pyproject.toml").read_text())["project"]["dependencies"]
    assert requirement_lines(bundle / "requirements.txt") == root + [r for r in project if "oncetask" not in r]

    import catalog

    assert json.loads((bundle / "oncetask.json").read_text()) == json.loads(json.dumps(catalog.app.manifest()))


def test_the_bundles_main_serves_from_the_bundle_alone(bundle: Path) -> None:
    # The modules come from the bundle, not from the checkout.
    where = subprocess.run([sys.executable, "-S", "-c", "import main, oncetask, catalog; "
                            "print(oncetask.__file__); print(catalog.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd=bundle.parent, env=bundle_env(bundle))
    assert where.returncode == 0, where.stderr
    assert [Path(line).parent.parent for line in where.stdout.split()] == [bundle, bundle]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-S", "-m", "functions_framework", "--source", str(bundle / "main.py"), "--target", "api",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=bundle.parent, env=bundle_env(bundle),
        start_new_session=True)
    try:
        def healthy() -> bool:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json() == {"status": "ok"}
            except requests.ConnectionError:
                return False
        wait_until(healthy, timeout=60, interval=0.2, message="the bundle's api to answer /healthz")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=20)


def test_bundling_again_replaces_the_earlier_bundle_whole(bundle: Path, capsys) -> None:
    (bundle / "catalog" / "stale.py").write_text("left over from a removed module\n")
    assert main(["bundle", "--app", "catalog:app", "--project", str(CATALOG), "--out", str(bundle)]) == 0
    assert not (bundle / "catalog" / "stale.py").exists() and (bundle / "oncetask.json").is_file()
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".bundle.building")]


def project(tmp_path: Path, pyproject: str | None, code: str = "") -> tuple[Path, str]:
    """A project with one package of a name of its own (the interpreter caches modules by name): (root, name)."""
    package = f"acme_{uuid.uuid4().hex[:8]}"
    root = tmp_path / package
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "jobs.py").write_text(textwrap.dedent(code))
    if pyproject is not None:
        (root / "pyproject.toml").write_text(textwrap.dedent(pyproject).replace("acme.", f"{package}."))
    return root, package


GOOD = """
import oncetask
from pydantic import BaseModel


class Order(BaseModel):
    order_id: str


app = oncetask.App("acme")
ship = app.job("order.ship", payload=Order)


@ship.stage
def label(ctx: oncetask.Context[Order]) -> dict:
    return {"label": ctx.payload.order_id}
"""
PYPROJECT = """
[project]
name = "acme"
version = "1.0"
dependencies = ["oncetask>=0.2", "httpx>=0.27", "requests>=2.32"]

[tool.oncetask]
app = "acme.jobs:app"
"""


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["bundle", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return " ".join(err.split())


def test_a_project_of_its_own_is_bundled_from_its_pyproject(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    root, package = project(tmp_path, PYPROJECT, GOOD)
    out = tmp_path / "out"
    assert main(["bundle", "--project", str(root), "--out", str(out), "--json"]) == 0  # the app from pyproject
    answer = json.loads(capsys.readouterr().out)
    assert answer["app"] == f"{package}.jobs:app" and answer["packages"] == [package]
    assert answer["job_types"] == ["order.ship"]
    lines = requirement_lines(out / "requirements.txt")
    assert "httpx>=0.27" in lines and not any(line.startswith("oncetask") for line in lines)
    assert [line for line in lines if line.startswith("requests")] == ["requests>=2.31,>=2.32"]  # one line, both bounds
    assert f"from {package}.jobs import app" in (out / "main.py").read_text()


def test_a_project_without_pyproject_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    root, package = project(tmp_path, None, GOOD)
    err = refused(capsys, "--app", f"{package}.jobs:app", "--project", str(root), "--out", str(tmp_path / "out"))
    assert "has no pyproject.toml" in err
    assert not (tmp_path / "out").exists()


def test_a_project_that_names_no_app_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    root, _ = project(tmp_path, '[project]\nname = "acme"\nversion = "1"\n', GOOD)
    err = refused(capsys, "--project", str(root), "--out", str(tmp_path / "out"))
    assert "which app?" in err and "[tool.oncetask]" in err
    root_without_table, _ = project(tmp_path, '[tool.oncetask]\napp = "acme.jobs:app"\n', GOOD)
    err = refused(capsys, "--project", str(root_without_table), "--out", str(tmp_path / "out"))
    assert "no [project] table" in err


def test_an_app_that_does_not_load_is_refused_and_nothing_is_written(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    root, package = project(tmp_path, PYPROJECT, GOOD)
    out = tmp_path / "out"
    err = refused(capsys, "--app", f"{package}.jobs:nothing", "--project", str(root), "--out", str(out))
    assert f"module '{package}.jobs' has no attribute 'nothing'" in err
    broken, _ = project(tmp_path, PYPROJECT, GOOD.replace("@ship.stage\ndef label", "def label"))
    err = refused(capsys, "--project", str(broken), "--out", str(out))
    assert "job type 'order.ship' has no stages" in err
    assert not out.exists()


def test_an_out_directory_that_is_not_a_bundle_is_left_alone(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    root, _ = project(tmp_path, PYPROJECT, GOOD)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    err = refused(capsys, "--project", str(root), "--out", str(tmp_path / "docs"))
    assert "is not empty and is not an earlier bundle" in err
    assert (tmp_path / "docs" / "notes.txt").read_text() == "mine"
    assert "holds the project itself" in refused(capsys, "--project", str(root), "--out", str(tmp_path))
