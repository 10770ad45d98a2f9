"""`oncetask demo`: the README's first command runs end to end and holds its expectations; it fails loudly when
one does not hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oncetask_dev.cli import main
from oncetask_dev.demo import DemoJob, evaluate
from oncetask_dev.stack import LocalStack

ONCETASK = str(Path(sys.executable).with_name("oncetask"))


def test_demo_starts_its_stack_runs_every_job_and_exits_0(tmp_path: Path) -> None:
    result = subprocess.run([ONCETASK, "demo"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "160", "ONCETASK_STACK_FILE": str(tmp_path / "s.json")})
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "expectations held" in out and "✗" not in out
    assert "time scale 0.01" in out  # it says why backoffs are quick
    for label in ("circle.png", "corrupt.png", "products.csv", "products.xlsx", "flaky", "always failing"):
        assert label in out
    assert "one dispatch per attempt (nothing processed twice)" in out


def test_demo_against_a_running_stack_uses_it(capsys: pytest.CaptureFixture[str], stack_file: Path,
                                              local_stack: LocalStack) -> None:
    code = main(["demo", "--api", local_stack.api_url, "--copies", "3"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "expectations held" in out


def test_demo_refuses_an_api_it_cannot_find_the_stack_of(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONCETASK_STACK_FILE", str(tmp_path / "none.json"))
    assert main(["demo", "--api", "http://127.0.0.1:9/"]) == 2
    assert "oncetask dev" in capsys.readouterr().err


def _finished(job: DemoJob, state: str, attempts: int) -> DemoJob:
    job.job_id = "0" * 32
    job.final = {"state": state, "attempts": attempts, "errors": [], "stage_outputs": {}}
    return job


def test_a_job_created_twice_or_ending_otherwise_fails_the_demo() -> None:
    job = _finished(DemoJob("x", "noop", {}, "k", "completed", 1), "completed", 2)
    job.statuses = ["queued", "queued"]
    totals = {"dead_letters": 0, "tasks_created": 2, "unique_jobs": 1, "dispatches": 2}
    failed = {check.name: check.detail for check in evaluate([job], totals, own_stack=True) if not check.ok}
    assert failed == {
        "each job was created by exactly one of its submissions": "not exactly once: ['x']",
        "x: completed after 1 attempt(s)": "2 attempts, expected 1",
        "one Cloud Task per job, whatever the duplicates": "2 tasks for 1 jobs",
        "one dispatch per attempt (nothing processed twice)": "2 dispatches for 1 attempts",
    }


def test_demo_in_this_process_leaves_its_emulator_hosts_alone(capsys: pytest.CaptureFixture[str], stack_file: Path,
                                                               local_stack: LocalStack) -> None:
    # A test process hosts the shared stack beside the suite's own emulators: the demo must not repoint them.
    before = {name: os.environ.get(name) for name in ("FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")}
    assert main(["demo", "--api", local_stack.api_url, "--copies", "2"]) == 0
    capsys.readouterr()
    assert {name: os.environ.get(name) for name in before} == before
