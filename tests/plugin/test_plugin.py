"""The pytest plugin as a user's project meets it: pytest run in a temporary project that loads the plugin (and
nothing else: entry-point plugins are off), then its outcome and output read back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import oncetask
from oncetask_dev import testjobs
from oncetask_dev.pytest_plugin import _served_reference

GREETINGS = '''
import oncetask
from pydantic import BaseModel

app = oncetask.App("greetings")

class Greeting(BaseModel):
    name: str

greet = app.job("demo.greet", payload=Greeting)

@greet.stage
def compose(ctx: oncetask.Context[Greeting]) -> dict:
    return {"card": ctx.artifacts.write("card.txt", f"Hello, {ctx.payload.name}!".encode())}

@greet.stage
def publish(ctx: oncetask.Context[Greeting]) -> dict:
    return {"published": ctx.outputs["compose"]["card"]}

unfinished = oncetask.App("unfinished")
unfinished.job("half.done", payload=Greeting)
'''


def project(tmp_path: Path, files: dict[str, str], ini: str | None = 'oncetask_app = "greetings:app"') -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n" + (ini or "") + "\n")
    (tmp_path / "greetings.py").write_text(GREETINGS)
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(body))
    return tmp_path


def pytest_in(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(path)}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "oncetask_dev.pytest_plugin", "-p",
                           "no:cacheprovider", "-q", *args], cwd=path, env=env, capture_output=True, text=True,
                          timeout=240)


def test_a_project_that_asks_for_no_fixture_imports_nothing_heavy_and_starts_nothing(tmp_path: Path) -> None:
    path = project(tmp_path, {"test_plain.py": '''
        import os, sys

        def children():
            found = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    stat = open(f"/proc/{pid}/stat").read()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                    found.append(pid)
            return found

        def test_plain():
            # (`google` and `google.cloud` themselves are namespace packages that .pth files load at start-up)
            loaded = sorted(m for m in sys.modules if m.startswith(("google.cloud.", "google.api_core", "grpc",
                                                                    "pydantic", "oncetask")))
            assert loaded == ["oncetask_dev", "oncetask_dev.pytest_plugin"]
            assert children() == []
        '''}, ini=None)
    result = pytest_in(path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("ini", "args", "message"), [
    (None, (), "the oncetask fixtures need your app: set `oncetask_app = \"module:attr\"` under "
               "[tool.pytest.ini_options]"),
    (None, ("--oncetask-app", "nowhere:app"), "oncetask_app = 'nowhere:app': no module named 'nowhere'"),
    ('oncetask_app = "greetings:ap"', (), "module 'greetings' has no attribute 'ap'"),
    (None, ("--oncetask-app", "greetings:unfinished"), "job type 'half.done' has no stages"),
])
def test_a_missing_or_wrong_app_is_one_clear_error_before_anything_starts(
        tmp_path: Path, ini: str | None, args: tuple[str, ...], message: str) -> None:
    path = project(tmp_path, {"test_job.py": "def test_job(oncetask_runner):\n    pass\n"}, ini=ini)
    result = pytest_in(path, *args)
    assert result.returncode == 1 and "1 error" in result.stdout, result.stdout + result.stderr
    assert message in result.stdout
    assert "Traceback" not in result.stdout and "launch" not in result.stdout


def test_a_users_job_runs_through_the_processor_with_settings_from_a_mark_or_an_app_from_a_fixture(
        tmp_path: Path) -> None:
    path = project(tmp_path, {
        "test_greet.py": '''
            import oncetask
            import pytest

            @pytest.mark.oncetask_settings(max_attempts=2)
            def test_greet(oncetask_runner):
                assert oncetask_runner.settings.max_attempts == 2
                job = oncetask_runner.submit("demo.greet", {"name": "Ada"}, key="ada")
                done = oncetask_runner.run(job)
                assert done.state is oncetask.JobState.COMPLETED
                assert oncetask_runner.read(done.outputs["compose"]["card"]) == b"Hello, Ada!"

            def test_defaults(oncetask_runner):
                assert oncetask_runner.settings.max_attempts == 3
            ''',
        "own/conftest.py": '''
            import oncetask
            import pytest
            from greetings import app as greetings

            @pytest.fixture(scope="session")
            def oncetask_app():
                return oncetask.App("mine").include(greetings)
            ''',
        "own/test_own.py": '''
            def test_own_app(oncetask_runner):
                assert oncetask_runner.app.name == "mine"
                assert oncetask_runner.run(oncetask_runner.submit("demo.greet", {"name": "x"})).attempts == 1
            ''',
    })
    result = pytest_in(path)
    assert result.returncode == 0 and "3 passed" in result.stdout, result.stdout + result.stderr


def test_settings_a_mark_gets_wrong_are_refused_by_name(tmp_path: Path) -> None:
    path = project(tmp_path, {"test_job.py": '''
        import pytest

        @pytest.mark.oncetask_settings(2)
        def test_positional(oncetask_runner):
            pass

        @pytest.mark.oncetask_settings(max_atempts=2)
        def test_misspelt(oncetask_runner):
            pass
        '''})
    result = pytest_in(path)
    assert "2 errors" in result.stdout, result.stdout + result.stderr
    assert "@pytest.mark.oncetask_settings takes settings by name, e.g. max_attempts=2" in result.stdout
    assert "unknown settings ['max_atempts']; see oncetask.Settings for their names" in result.stdout


def test_the_stack_serves_an_app_by_the_module_level_name_it_is_found_under() -> None:
    assert _served_reference(testjobs.app, "oncetask_dev.testjobs:app") == "oncetask_dev.testjobs:app"
    assert _served_reference(testjobs.app, "") == "oncetask_dev.testjobs:app"
    with pytest.raises(pytest.fail.Exception, match="not a module-level name"):
        _served_reference(oncetask.App("nowhere"), "")
