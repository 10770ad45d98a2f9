"""The `oncetask` CLI against the shared running stack: submit, status, list, retry, cancel, cleanup, --json, and
the API's own words (with a non-zero exit) when it refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from fixtures.tasks import wait_until
from oncetask_dev.apiclient import ApiClient
from oncetask_dev.cli import main
from oncetask_dev.stack import LocalStack

ONCETASK = str(Path(sys.executable).with_name("oncetask"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err or out
    return json.loads(out)


def key() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def wait_state(api: ApiClient, job_id: str, state: str) -> dict[str, Any]:
    wait_until(lambda: api.get(job_id)["state"] == state, timeout=20, message=f"job {job_id} to be {state}")
    return api.get(job_id)


def test_submit_twice_with_one_key_gives_one_job(capsys, stack_file: Path, stack_api: ApiClient) -> None:
    k = key()
    first = run_json(capsys, "submit", "test.pipeline", "--key", k)
    second = run_json(capsys, "submit", "test.pipeline", "--key", k)
    assert first["status"] == "queued"
    assert second["job_id"] == first["job_id"] and second["status"].startswith("already_")


def test_submit_wait_shows_the_finished_job_readably(capsys, stack_file: Path) -> None:
    code, out, _ = run(capsys, "submit", "test.pipeline", "--key", key(), "--wait", "20")
    assert code == 0
    assert "completed" in out and "prepare" in out and "attempts" in out


def test_status_and_list_show_a_job_as_the_api_does(capsys, stack_file: Path, stack_api: ApiClient) -> None:
    job_id = stack_api.submit("noop", {"note": "listed"}, key())["job_id"]
    wait_state(stack_api, job_id, "completed")
    status = run_json(capsys, "status", job_id)
    assert status == stack_api.get(job_id)
    listed = run_json(capsys, "list", "--state", "completed", "--limit", "100")
    assert job_id in [job["job_id"] for job in listed["jobs"]]
    code, out, _ = run(capsys, "list", "--state", "completed", "--limit", "1")
    assert code == 0 and listed["jobs"][0]["job_id"] in out and "completed" in out


def test_retry_runs_a_failed_job_again_to_completion(capsys, stack_file: Path, stack_api: ApiClient) -> None:
    payload = {"fail_times": 1, "fail_kind": "permanent"}  # fails its first attempt only
    job_id = stack_api.submit("test.pipeline", payload, key())["job_id"]
    failed = wait_state(stack_api, job_id, "failed")
    assert failed["errors"][-1]["code"] == "INJECTED_FAILURE"
    assert run_json(capsys, "retry", job_id)["status"] == "queued"
    done = wait_state(stack_api, job_id, "completed")
    assert done["attempts"] == 2 and done["generation"] == 2


def test_cancel_stops_a_running_job(capsys, stack_file: Path, stack_api: ApiClient) -> None:
    job_id = stack_api.submit("test.pipeline", {"sleep_ms": 20_000}, key())["job_id"]
    wait_state(stack_api, job_id, "running")
    answer = run_json(capsys, "cancel", job_id)
    assert answer["status"] in ("cancel_requested", "cancelled")
    wait_state(stack_api, job_id, "cancelled")


def test_api_refusal_is_shown_in_its_own_words_with_exit_1(capsys, stack_file: Path, stack_api: ApiClient) -> None:
    job_id = stack_api.submit("noop", {}, key())["job_id"]
    wait_state(stack_api, job_id, "completed")
    code, _, err = run(capsys, "retry", job_id)
    assert code == 1
    assert "only failed jobs can be retried; this one is completed" in " ".join(err.split())
    code, out, _ = run(capsys, "submit", "no.such.type", "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["status"] == 422 and error["field"] == "job_type" and "unknown job type 'no.such.type'" in \
        error["message"]


def test_unreachable_api_is_an_error_not_a_traceback(capsys) -> None:
    code, _, err = run(capsys, "list", "--api", "http://127.0.0.1:9/")
    assert code == 1 and "cannot reach the API" in " ".join(err.split())


def test_without_an_api_url_the_cli_says_how_to_give_one(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ONCETASK_STACK_FILE", str(tmp_path / "none.json"))
    monkeypatch.delenv("ONCETASK_API_URL", raising=False)
    code, _, err = run(capsys, "list")
    assert code == 2 and "--api" in err and "ONCETASK_API_URL" in err


def test_cleanup_runs_the_cleanup_function_as_the_scheduler_does(capsys, stack_file: Path,
                                                                 local_stack: LocalStack) -> None:
    cleanup = local_stack.children["cleanup"]

    def runs() -> int:
        return sum('"cleanup done"' in line for line in list(cleanup.output))

    before = runs()
    answer = run_json(capsys, "cleanup", "--wait", "10")
    assert answer["ran"] is True
    wait_until(lambda: runs() > before, timeout=10, message="the cleanup function to log its run")


def test_installed_console_script_lists_jobs(local_stack: LocalStack) -> None:
    result = subprocess.run([ONCETASK, "list", "--json", "--api", local_stack.api_url], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "ONCETASK_API_URL": ""})
    assert result.returncode == 0, result.stderr
    assert "jobs" in json.loads(result.stdout)


def test_time_in_state_is_kept_while_heartbeats_move_updated_at(capsys, stack_file: Path,
                                                                 stack_api: ApiClient) -> None:
    job_id = stack_api.submit("test.pipeline", {"sleep_ms": 2_000}, key())["job_id"]
    running = wait_state(stack_api, job_id, "running")
    # The lease (3 s here) is renewed every second: updated_at moves, the moment the job started running does not.
    wait_until(lambda: stack_api.get(job_id)["updated_at"] != running["updated_at"], timeout=10,
               message="a heartbeat")
    later = run_json(capsys, "status", job_id)
    assert later["state"] == "running" and later["state_changed_at"] == running["state_changed_at"]
    assert later["state_changed_at"] > later["created_at"]


def test_submit_wait_exits_1_when_the_job_fails(capsys, stack_file: Path) -> None:
    code, out, err = run(capsys, "submit", "test.pipeline", "--key", key(), "--payload",
                         '{"fail_times": 1, "fail_kind": "permanent"}', "--wait", "20", "--json")
    assert code == 1 and json.loads(out)["state"] == "failed" and "the job is failed" in err


def test_bad_payload_json_is_a_usage_error(capsys, stack_file: Path) -> None:
    code, _, err = run(capsys, "submit", "noop", "--payload", "{not json")
    assert code == 2 and "--payload is not valid JSON" in err
