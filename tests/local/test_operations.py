"""Operating the shared running stack from the CLI: one job's log lines (each carrying the job's trace, across
the API process and every delivery), `oncetask stats`, progress and tracebacks in `oncetask status`, and the counts
of a cleanup run."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from fixtures.tasks import wait_until
from oncetask.logs import TRACE_KEY
from oncetask_dev import logfile
from oncetask_dev.apiclient import ApiClient
from oncetask_dev.cli import main
from oncetask_dev.stack import LocalStack


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def key() -> str:
    return f"ops-{uuid.uuid4().hex[:8]}"


def new_trace() -> str:
    return uuid.uuid4().hex


def submit_traced(stack: LocalStack, job_type: str, payload: dict[str, Any], trace: str) -> str:
    answer = requests.post(stack.api_url + "jobs", json={"job_type": job_type, "payload": payload,
                                                         "idempotency_key": key()},
                           headers={"X-Cloud-Trace-Context": f"{trace}/7;o=1"}, timeout=10)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["job_id"])


def wait_state(api: ApiClient, job_id: str, state: str) -> dict[str, Any]:
    wait_until(lambda: api.get(job_id)["state"] == state, timeout=30, message=f"job {job_id} to be {state}")
    return api.get(job_id)


def logged(stack: LocalStack, needle: str, message: str) -> list[tuple[str, str]]:
    """The log file's lines mentioning `needle`, once one of them says `message` (lines reach the file as the parts
    write them, a moment after the API answers)."""
    assert stack.options.log_file is not None

    def lines() -> list[tuple[str, str]] | None:
        found = [(part, line) for part, line in logfile.read(stack.options.log_file) if needle in line]
        return found if any(f'"message": "{message}"' in line for _, line in found) else None

    return wait_until(lines, timeout=20, message=f"a line saying {message!r} about {needle}")  # type: ignore[return-value]


def test_logs_shows_one_jobs_lines_each_carrying_the_trace_of_its_submission(capsys, stack_file: Path,
                                                                            local_stack: LocalStack,
                                                                            stack_api: ApiClient) -> None:
    trace = new_trace()
    job_id = submit_traced(local_stack, "test.pipeline", {"fail_times": 1}, trace)  # two deliveries
    job = wait_state(stack_api, job_id, "completed")
    assert job["trace_id"] == trace and job["attempts"] == 2
    logged(local_stack, job_id, "job completed")
    code, out, _ = run(capsys, "logs", job_id, "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    entries = [(line["part"], line["line"]) for line in lines if isinstance(line["line"], dict)]
    assert {part for part, _ in entries} == {"api", "task_handler"}
    expected = f"projects/{local_stack.settings().project_id}/traces/{trace}"
    mine = [entry for _, entry in entries if entry.get("job_id") == job_id]
    assert mine and all(entry.get(TRACE_KEY) == expected for entry in mine), \
        [entry for entry in mine if entry.get(TRACE_KEY) != expected]
    messages = [entry["message"] for entry in mine]
    assert "job submitted" in messages and messages.count("lease acquired") == 2 and "job completed" in messages
    assert any(entry.get("event") == "stage.failed" for entry in mine)  # the first delivery's failure
    # Readable by default, as `oncetask dev` prints them.
    code, out, _ = run(capsys, "logs", job_id, "--part", "task_handler")
    assert code == 0 and f"lease acquired job_id={job_id}" in out and "api " not in out


def test_logs_trace_shows_a_parent_with_its_children(capsys, stack_file: Path, local_stack: LocalStack,
                                                     stack_api: ApiClient) -> None:
    trace = new_trace()
    parent = submit_traced(local_stack, "test.fanout", {"parts": 2}, trace)
    wait_state(stack_api, parent, "completed")
    logged(local_stack, trace, "job completed")
    code, out, _ = run(capsys, "logs", parent, "--trace", "--json")
    assert code == 0
    job_ids = {line["line"].get("job_id") for line in map(json.loads, out.splitlines())
               if isinstance(line["line"], dict)}
    assert parent in job_ids and len(job_ids - {parent, None}) == 2  # and the two children's


def test_logs_of_an_unknown_job_say_so_with_exit_1(capsys, stack_file: Path) -> None:
    code, _, err = run(capsys, "logs", "f" * 32)
    assert code == 1 and "no lines about job" in err


def test_logs_without_a_log_file_say_how_to_get_one(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ONCETASK_STACK_FILE", str(tmp_path / "stack.json"))
    code, _, err = run(capsys, "logs")
    assert code == 2 and "oncetask dev" in err


def test_status_shows_a_running_stages_progress(capsys, stack_file: Path, stack_api: ApiClient) -> None:
    job_id = stack_api.submit("test.pipeline", {"sleep_ms": 20_000}, key())["job_id"]
    wait_until(lambda: stack_api.get(job_id).get("progress"), timeout=20, message="progress to show")
    code, out, _ = run(capsys, "status", job_id)
    assert code == 0 and "progress" in out and "% prepare: working (stage prepare" in out
    assert stack_api.cancel(job_id)["status"] == "cancel_requested"
    wait_state(stack_api, job_id, "cancelled")  # promptly: the listener tells the worker


def test_status_of_a_bug_shows_its_type_and_traceback(capsys, stack_file: Path, stack_api: ApiClient) -> None:
    job_id = stack_api.submit("test.pipeline", {"fail_times": 1, "fail_kind": "bug"}, key())["job_id"]
    job = wait_state(stack_api, job_id, "failed")
    assert job["attempts"] == 1 and job["errors"][-1]["code"] == "BUG"
    code, out, _ = run(capsys, "status", job_id)
    assert code == 0
    assert "BUG (permanent): KeyError: 'width'" in out and "[KeyError]" in out
    assert "Traceback (most recent call last)" in out and 'settings["width"]' in out


def test_stats_shows_states_queues_dead_letters_and_their_cost(capsys, stack_file: Path,
                                                              stack_api: ApiClient) -> None:
    code, out, _ = run(capsys, "stats", "--json")
    assert code == 0
    stats = json.loads(out)
    assert set(stats["states"]) == {"queued", "scheduled", "running", "waiting", "retrying", "completed", "failed",
                                    "cancelled"}
    assert {queue["purpose"] for queue in stats["queues"]} == {"jobs", "callbacks"}
    assert all(queue["error"] is None for queue in stats["queues"])
    code, out, _ = run(capsys, "stats")
    assert code == 0
    for words in ("queues", "lapsed leases", "dead letters", "oncetask-interactive", "Firestore reads"):
        assert words in out


def test_cleanup_prints_the_counts_of_its_run(capsys, stack_file: Path) -> None:
    code, out, _ = run(capsys, "cleanup", "--wait", "10", "--json")
    assert code == 0
    report = json.loads(out)["report"]
    assert set(report) == {"requeued", "purged", "scanned", "errors"} and report["errors"] == 0
    code, out, _ = run(capsys, "cleanup", "--wait", "10")
    assert code == 0 and "cleanup ran: requeued " in out and "scanned" in out


def test_list_filters_by_job_type(capsys, stack_file: Path, stack_api: ApiClient) -> None:
    stack_api.submit("noop", {"note": "typed"}, key())
    code, out, _ = run(capsys, "list", "--type", "noop", "--limit", "100", "--json")
    assert code == 0
    jobs = json.loads(out)["jobs"]
    assert jobs and {job["job_type"] for job in jobs} == {"noop"}


def test_the_log_file_rotates_past_its_size_and_reads_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "stack.log"
    log = logfile.LogFile(path, max_bytes=200)
    for n in range(30):
        log.write("api", f"line {n:02d} " + "x" * 20)
    log.close()
    lines = [line for _, line in logfile.read(path)]
    assert path.with_name("stack.log.1").exists() and lines == sorted(lines) and lines[-1].startswith("line 29")
    assert len(lines) < 30  # what was rotated twice is gone: the file never grows past about twice max_bytes
    fresh = logfile.LogFile(path)  # a new run starts empty
    fresh.close()
    assert list(logfile.read(path)) == []


def test_lines_are_shown_in_the_order_of_the_times_they_carry() -> None:
    def line(at: str, message: str) -> str:
        return json.dumps({"time": f"2026-01-01T00:00:{at}+00:00", "message": message})

    lines = [("task_handler", line("02", "lease acquired")), ("tasks", "a line without a time"),
             ("api", line("01", "job submitted")), ("task_handler", line("03", "job completed"))]
    assert [message for _, message in logfile.in_time_order(iter(lines))] == [
        lines[2][1], lines[0][1], "a line without a time", lines[3][1]]
