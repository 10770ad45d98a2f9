"""`oncetask dev --app` and `oncetask check`: the app is found from the current directory as the functions will
find it, and a wrong reference or a wrong definition is one sentence naming what is wrong, with exit status 2
and no traceback, said before any part of the stack starts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from oncetask_dev.cli import main

ONCETASK = str(Path(sys.executable).with_name("oncetask"))
# Ports nothing listens on: a command that got as far as starting the stack would fail differently.
NO_PORTS = ("--api-port", "0", "--task-handler-port", "0", "--cleanup-port", "0")

GOOD_APP = """
import oncetask
from pydantic import BaseModel


class Note(BaseModel):
    text: str = ""


app = oncetask.App("notes")
note = app.job("note.echo", payload=Note)


@note.stage
def echo(ctx: oncetask.Context[Note]) -> dict:
    return {"text": ctx.payload.text}

not_an_app = 42
"""

NO_STAGES = """
import oncetask
from pydantic import BaseModel


class Note(BaseModel):
    text: str = ""


app = oncetask.App("notes")
app.job("note.forgotten", payload=Note)  # no stage: a definition that cannot work
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory the command runs from; sys.path is restored afterwards (the CLI puts it first)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("ONCETASK_STACK_FILE", str(tmp_path / "stack.json"))
    return tmp_path


def module(project: Path, source: str) -> str:
    """Write a module with a name of its own (the interpreter caches modules by name) and return the name."""
    name = f"jobs_{uuid.uuid4().hex[:8]}"
    (project / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, " ".join(err.split())


def test_dev_with_a_module_that_does_not_exist_names_it(capsys, project: Path) -> None:
    code, err = run(capsys, "dev", "--app", "no_such_jobs:app", *NO_PORTS)
    assert code == 2
    assert "--app no_such_jobs:app: no module named 'no_such_jobs'" in err


def test_dev_with_a_missing_attribute_names_the_module_and_attribute(capsys, project: Path) -> None:
    name = module(project, GOOD_APP)
    code, err = run(capsys, "dev", "--app", f"{name}:application", *NO_PORTS)
    assert code == 2
    assert f"module '{name}' has no attribute 'application'" in err


def test_dev_with_something_that_is_not_an_app_says_what_it_is(capsys, project: Path) -> None:
    name = module(project, GOOD_APP)
    code, err = run(capsys, "dev", "--app", f"{name}:not_an_app", *NO_PORTS)
    assert code == 2
    assert f"{name}:not_an_app is a int, not an oncetask.App" in err


def test_dev_with_a_definition_error_names_the_job_type_and_the_problem(capsys, project: Path) -> None:
    name = module(project, NO_STAGES)
    code, err = run(capsys, "dev", "--app", f"{name}:app", *NO_PORTS)
    assert code == 2
    assert f"--app {name}:app: job type 'note.forgotten' has no stages" in err


def test_a_module_whose_own_code_fails_shows_that_code_not_the_import_machinery(capsys, project: Path) -> None:
    name = module(project, "import oncetask\napp = oncetask.App('x')\nraise RuntimeError('config missing')\n")
    code = main(["dev", "--app", f"{name}:app", *NO_PORTS])
    err = capsys.readouterr().err
    assert code == 2
    assert "RuntimeError: config missing" in err and f"{name}.py\", line 3" in err
    assert "importlib" not in err and "oncetask_dev" not in err


def test_check_loads_the_app_from_the_current_directory_and_lists_its_job_types(capsys, project: Path) -> None:
    name = module(project, GOOD_APP)
    assert main(["check", "--app", f"{name}:app"]) == 0
    out = capsys.readouterr().out
    assert "note.echo" in out and "every definition checks" in out


def test_the_app_named_in_pyproject_is_the_default(capsys, project: Path) -> None:
    name = module(project, NO_STAGES)
    (project / "pyproject.toml").write_text(f'[project]\nname = "notes"\n\n[tool.oncetask]\napp = "{name}:app"\n')
    code, err = run(capsys, "check")
    assert code == 2 and "job type 'note.forgotten' has no stages" in err
    code, err = run(capsys, "dev", *NO_PORTS)
    assert code == 2 and "job type 'note.forgotten' has no stages" in err


def test_check_without_any_app_says_how_to_name_one(capsys, project: Path) -> None:
    code, err = run(capsys, "check")
    assert code == 2 and "--app module:attribute" in err and "[tool.oncetask]" in err


def test_unknown_part_in_logs_is_refused_naming_the_parts(capsys, project: Path) -> None:
    code, err = run(capsys, "dev", "--logs", "api,handler", *NO_PORTS)
    assert code == 2 and "no part 'handler'" in err and "task_handler" in err


def test_the_installed_command_says_a_wrong_app_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run([ONCETASK, "dev", "--app", "no_such_jobs:app", *NO_PORTS], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "ONCETASK_STACK_FILE": str(tmp_path / "stack.json")})
    assert result.returncode == 2
    assert "no module named 'no_such_jobs'" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""  # nothing started, nothing announced
