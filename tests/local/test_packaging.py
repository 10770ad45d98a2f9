"""The two distributions: `oncetask` (the runtime, all a deployed function needs) and `oncetask-dev` (emulators,
local stack, CLI, pytest plugin). Both build with `python -m build` (sdist, and the wheel from it), their wheels
carry what they should and nothing else, and installed from those wheels (not from this checkout) the commands
work: the `oncetask` launcher says what to install without oncetask-dev, and with it runs a stack from any
directory.

Installing the wheels with their dependencies into a fresh venv took 145 s on this machine (venv with pip 30 s,
downloads and installs 115 s; 2 shared cores), so the wheels are installed with --no-deps into a venv that sees
this environment's third-party packages (symlinked, without the editable installs of this checkout); their
declared requirements are then checked against what that venv has.
"""

from __future__ import annotations

import email
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tomllib
import uuid
import zipfile
from collections.abc import Iterator
from configparser import ConfigParser
from pathlib import Path

import pytest
import requests

from fixtures.tasks import wait_until
from oncetask_dev.apiclient import ApiClient

REPO = Path(__file__).resolve().parents[2]
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
ROOT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
DEV = tomllib.loads((REPO / "emulators" / "pyproject.toml").read_text())["project"]
# Never in what a deployment installs.
DEVELOPMENT_ONLY = {"rich", "pillow", "openpyxl", "grpcio", "cryptography", "pytest", "pytest-timeout", "hypothesis",
                    "schemathesis", "selenium", "python-hcl2", "pyyaml", "google-cloud-testutils", "oncetask-dev"}


def name_of(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_both_distributions_have_one_version_and_pin_each_other_to_it() -> None:
    version = ROOT["version"]
    assert DEV["version"] == version == "0.2.0"
    assert ROOT["optional-dependencies"]["dev"] == [f"oncetask-dev=={version}"]
    assert f"oncetask=={version}" in [r.split("#")[0].strip() for r in DEV["dependencies"]]
    import oncetask

    assert oncetask.__version__ == version


def test_the_runtime_needs_nothing_for_development_and_the_test_tools_are_an_extra_of_oncetask_dev() -> None:
    assert {name_of(r) for r in ROOT["dependencies"]} & DEVELOPMENT_ONLY == set()
    assert set(ROOT["optional-dependencies"]) == {"dev"}
    test_tools = {name_of(r) for r in DEV["optional-dependencies"]["test"]}
    assert {"pytest-timeout", "hypothesis", "schemathesis", "selenium", "python-hcl2", "pyyaml",
            "google-cloud-testutils"} <= test_tools
    assert test_tools & {name_of(r) for r in DEV["dependencies"]} == set()


# Environments that see this one's third-party packages but not this checkout ------------------------------------

def venv_without_this_checkout(path: Path) -> Path:
    """A venv (no pip of its own) whose site-packages links every third-party package of this environment, but
    neither the editable installs of this checkout nor their metadata: oncetask and oncetask-dev are not there."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=60)
    python = path / "bin" / "python"
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    for entry in SITE_PACKAGES.iterdir():
        if entry.name.startswith(("__editable__", "oncetask", "_oncetask", "catalog")):
            continue
        if not (target / entry.name).exists():
            (target / entry.name).symlink_to(entry)
    return python


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return {**env, "COLUMNS": "200", **extra}


def test_the_launcher_without_oncetask_dev_says_what_to_install(tmp_path: Path) -> None:
    python = venv_without_this_checkout(tmp_path / "venv")
    # The runtime package from this checkout, the launcher as its console script calls it; no oncetask_dev.
    result = subprocess.run([str(python), "-c", "import sys; from oncetask._cli import main; sys.exit(main())"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env=clean_env(PYTHONPATH=str(REPO / "functions")))
    assert result.returncode == 2, result.stderr
    assert "pip install 'oncetask[dev]'" in result.stderr and "oncetask-dev" in result.stderr
    assert "Traceback" not in result.stderr


# Building and installing the wheels --------------------------------------------------------------------------

def _sources(into: Path) -> Path:
    """What `python -m build` reads, copied (no build/ or egg-info of earlier builds, nothing written here)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, into / name)
    shutil.copytree(REPO / "functions" / "oncetask", into / "functions" / "oncetask", ignore=ignore)
    (into / "emulators").mkdir()
    shutil.copy2(REPO / "emulators" / "pyproject.toml", into / "emulators" / "pyproject.toml")
    for package in ("oncetask_dev", "oncetask_emulators"):
        shutil.copytree(REPO / "emulators" / package, into / "emulators" / package, ignore=ignore)
    return into


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both projects built as `python -m build` builds them: the sdist, then the wheel from the sdist."""
    src = _sources(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    builds = [subprocess.Popen([sys.executable, "-m", "build", "--outdir", str(out), str(project)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for project in (src, src / "emulators")]
    for build in builds:
        output, _ = build.communicate(timeout=600)
        assert build.returncode == 0, output[-3000:]
    return out


def wheel(dist: Path, name: str) -> zipfile.ZipFile:
    (path,) = dist.glob(f"{name}-0.2.0-py3-none-any.whl")
    return zipfile.ZipFile(path)


def metadata(archive: zipfile.ZipFile, name: str) -> email.message.Message:
    return email.message_from_string(archive.read(f"{name}-0.2.0.dist-info/METADATA").decode())


def entry_points(archive: zipfile.ZipFile, name: str) -> dict[str, dict[str, str]]:
    parser = ConfigParser()
    parser.read_string(archive.read(f"{name}-0.2.0.dist-info/entry_points.txt").decode())
    return {section: dict(parser[section]) for section in parser.sections()}


def test_both_projects_build_an_sdist_and_a_wheel(dist: Path) -> None:
    assert sorted(p.name for p in dist.iterdir()) == [
        "oncetask-0.2.0-py3-none-any.whl", "oncetask-0.2.0.tar.gz",
        "oncetask_dev-0.2.0-py3-none-any.whl", "oncetask_dev-0.2.0.tar.gz"]


def test_the_runtime_wheel_holds_the_runtime_package_only(dist: Path) -> None:
    archive = wheel(dist, "oncetask")
    packages = {name.split("/")[0] for name in archive.namelist()}
    assert packages == {"oncetask", "oncetask-0.2.0.dist-info"}
    assert "oncetask/static/status.html" in archive.namelist() and "oncetask/_cli.py" in archive.namelist()
    meta = metadata(archive, "oncetask")
    runtime = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    assert {name_of(r) for r in runtime} == {name_of(r) for r in ROOT["dependencies"]}
    assert [r for r in meta.get_all("Requires-Dist") if "extra ==" in r] == ['oncetask-dev==0.2.0; extra == "dev"']
    assert entry_points(archive, "oncetask") == {"console_scripts": {"oncetask": "oncetask._cli:main"}}


def test_the_dev_wheel_holds_the_tools_their_commands_and_the_pytest_plugin(dist: Path) -> None:
    archive = wheel(dist, "oncetask_dev")
    packages = {name.split("/")[0] for name in archive.namelist()}
    assert packages == {"oncetask_dev", "oncetask_emulators", "oncetask_dev-0.2.0.dist-info"}
    for module in ("cli", "stack", "bundle", "testjobs", "demoapp", "pytest_plugin", "reaper"):
        assert f"oncetask_dev/{module}.py" in archive.namelist()
    meta = metadata(archive, "oncetask_dev")
    requires = meta.get_all("Requires-Dist")
    assert "oncetask==0.2.0" in requires
    assert {name_of(r) for r in requires if 'extra == "test"' in r} >= {"pytest-timeout", "hypothesis"}
    assert entry_points(archive, "oncetask_dev") == {
        "console_scripts": {"oncetask-firestore-emulator": "oncetask_emulators.firestore.server:main",
                            "oncetask-tasks-emulator": "oncetask_emulators.tasks.server:main",
                            "oncetask-storage-emulator": "oncetask_emulators.storage.server:main"},
        "oncetask.cli": {"oncetask": "oncetask_dev.cli:main"},
        "pytest11": {"oncetask": "oncetask_dev.pytest_plugin"},
    }


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv with the runtime wheel installed (no oncetask-dev yet); yields its bin directory."""
    python = venv_without_this_checkout(tmp_path_factory.mktemp("wheels") / "venv")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run([*pip, str(next(dist.glob("oncetask-*.whl")))], check=True, timeout=120)
    yield python.parent
    # (the dev wheel is installed by the test that needs it, after the launcher was tried without it)


def run(bin_dir: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=clean_env())


def test_installed_wheels_run_the_commands_from_any_directory(installed: Path, dist: Path, tmp_path: Path) -> None:
    # The runtime alone: the launcher says what to install.
    alone = run(installed, "oncetask", "--help", cwd=tmp_path)
    assert alone.returncode == 2 and "pip install 'oncetask[dev]'" in alone.stderr and "Traceback" not in alone.stderr

    python = installed / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(next(dist.glob("oncetask_dev-*.whl")))], check=True, timeout=120)
    where = subprocess.run([str(python), "-c", "import oncetask, oncetask_dev; print(oncetask.__file__); "
                            "print(oncetask_dev.__file__)"], capture_output=True, text=True, cwd=tmp_path,
                           env=clean_env(), check=True)
    assert all(str(installed.parent) in line and str(REPO) not in line for line in where.stdout.split())

    # Every requirement the two wheels declare (extras aside) is met by what this venv has.
    unmet = subprocess.run([str(python), "-c", UNMET_REQUIREMENTS], capture_output=True, text=True, env=clean_env())
    assert unmet.returncode == 0 and unmet.stdout.strip() == "[]", unmet.stdout + unmet.stderr

    helped = run(installed, "oncetask", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "bundle" in helped.stdout, helped.stderr
    assert run(installed, "oncetask-tasks-emulator", "--help", cwd=tmp_path).returncode == 0
    checked = run(installed, "oncetask", "check", "--app", "oncetask_dev.testjobs:app", cwd=tmp_path)
    assert checked.returncode == 0 and "test.pipeline" in checked.stdout, checked.stderr
    wrong = run(installed, "oncetask", "check", "--app", "oncetask_dev.testjobs:nope", cwd=tmp_path)
    assert wrong.returncode == 2 and "has no attribute 'nope'" in wrong.stderr and "Traceback" not in wrong.stderr
    # The built-in examples need the catalog example, which this venv has not: said, not a traceback.
    demo = run(installed, "oncetask", "demo", cwd=tmp_path)
    assert demo.returncode == 2 and "pip install ./examples/catalog" in " ".join(demo.stderr.split())

    # And the local stack runs from the installed wheels, in a directory that is not this checkout.
    proc = subprocess.Popen(
        [str(installed / "oncetask"), "dev", "--json", "--app", "oncetask_dev.testjobs:app", "--api-port", "0",
         "--task-handler-port", "0", "--cleanup-port", "0", "--time-scale", "0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env=clean_env(ONCETASK_STACK_FILE=str(tmp_path / "stack.json")))
    try:
        assert proc.stdout is not None
        description = json.loads(proc.stdout.readline() or "{}")
        assert "api_url" in description, proc.stderr.read() if proc.stderr else ""
        assert requests.get(description["api_url"] + "healthz", timeout=5).json() == {"status": "ok"}
        api = ApiClient(description["api_url"])
        job_id = api.submit("noop", {"note": "from wheels"}, f"wheel-{uuid.uuid4().hex[:8]}")["job_id"]
        wait_until(lambda: api.get(job_id)["state"] == "completed", timeout=30, message="the job to complete")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


UNMET_REQUIREMENTS = """
import importlib.metadata as md, json
from packaging.requirements import Requirement
unmet = []
for dist in ("oncetask", "oncetask-dev"):
    for line in md.requires(dist) or ():
        req = Requirement(line)
        if req.marker is not None and "extra" in str(req.marker):
            continue
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            unmet.append(f"{dist}: {line} (missing)")
            continue
        if not req.specifier.contains(version, prereleases=True):
            unmet.append(f"{dist}: {line} (have {version})")
print(json.dumps(unmet))
"""
