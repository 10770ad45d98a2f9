"""The local stack: every part answers once it says ready, it is wired as production is, a death is reported,
restarts and --data-dir keep state, and stopping (or SIGTERM to `oncetask dev`) leaves no process behind."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from google.cloud import firestore, storage

from fixtures.tasks import TESTS_TIME_SCALE, wait_until
from oncetask.clients import tasks_client
from oncetask_dev.apiclient import ApiClient
from oncetask_dev.cli import main
from oncetask_dev.localclients import firestore_api, storage_api
from oncetask_dev.scheduler import next_run
from oncetask_dev.stack import ChildDied, LocalStack, StackError, StackOptions

ONCETASK = str(Path(sys.executable).with_name("oncetask"))


def group_members(pgid: int) -> list[int]:
    """Every live process whose process group is `pgid` (read from /proc: no reliance on ps)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def all_members(groups: list[int]) -> list[int]:
    return [pid for pgid in groups for pid in group_members(pgid)]


def storage_for(stack: LocalStack) -> storage.Client:
    return storage_api(stack.storage_host, stack.options.project_id)


def test_every_part_answers_once_the_stack_says_ready(local_stack: LocalStack) -> None:
    assert requests.get(local_stack.api_url + "healthz", timeout=5).json() == {"status": "ok"}
    page = requests.get(local_stack.api_url, timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    # The two service targets answer, and refuse a caller without the OIDC token Cloud Tasks would send.
    assert requests.post(local_stack.task_handler_url, json={}, timeout=5).status_code == 401
    assert requests.post(local_stack.cleanup_url, json={}, timeout=5).status_code == 401
    settings = local_stack.settings()
    assert storage_for(local_stack).bucket(settings.bucket).exists()
    queues = {q.name for q in tasks_client(settings).list_queues(
        parent=f"projects/{settings.project_id}/locations/{settings.location}")}
    assert set(local_stack.job_queues()) <= queues


def test_every_queue_has_the_settings_of_the_apps_manifest_as_production_would(local_stack: LocalStack) -> None:
    settings = local_stack.settings()
    client = tasks_client(settings)
    for declared in local_stack.manifest()["queues"]:  # what the Terraform module creates from the same manifest
        queue = client.get_queue(name=settings.queue_path(declared["name"]))
        retry = queue.retry_config
        assert retry.max_attempts == declared["max_attempts"]
        assert retry.min_backoff.total_seconds() == declared["min_backoff_seconds"]
        assert retry.max_backoff.total_seconds() == declared["max_backoff_seconds"]
        assert retry.max_doublings == declared["max_doublings"]
        assert retry.max_retry_duration.total_seconds() == declared["max_retry_duration_seconds"]
        assert queue.rate_limits.max_dispatches_per_second == declared["max_dispatches_per_second"]
        assert queue.rate_limits.max_concurrent_dispatches == declared["max_concurrent_dispatches"]


def test_functions_get_the_emulators_and_the_tasks_emulators_jwks(local_stack: LocalStack) -> None:
    env = local_stack.function_env()
    assert env["ONCETASK_OIDC_CERTS_URL"] == f"http://{local_stack.tasks_http}/oauth2/v3/certs"
    assert requests.get(env["ONCETASK_OIDC_CERTS_URL"], timeout=5).json()["keys"]
    assert env["ONCETASK_TASK_HANDLER_URL"] == local_stack.task_handler_url
    assert env["ONCETASK_CLEANUP_AUDIENCE"] == local_stack.cleanup_url
    assert (env["FIRESTORE_EMULATOR_HOST"], env["CLOUD_TASKS_EMULATOR_HOST"]) == (
        local_stack.firestore_host, local_stack.tasks_host)
    # Local development opts out of the API's tokens explicitly (the CLI, the demo, the page without sign-in).
    assert env["ONCETASK_API_REQUIRE_AUTH"] == "false"


def test_task_handler_runs_as_several_worker_processes(local_stack: LocalStack) -> None:
    # gunicorn's master plus one process per worker, all in the handler's process group (it answers as soon as
    # the first worker does; the others may still be forking).
    pgid = local_stack.children["task_handler"].pid
    wait_until(lambda: len(group_members(pgid)) >= 1 + local_stack.options.handler_workers, timeout=20,
               message="the task handler's master and its two workers")


def test_scheduler_tick_runs_the_cleanup_with_a_token_it_accepts(local_stack: LocalStack) -> None:
    cleanup = local_stack.children["cleanup"]

    def runs() -> int:
        return sum('"cleanup done"' in line for line in list(cleanup.output))

    before = runs()
    local_stack.trigger_cleanup(wait=10)
    # The function logs "cleanup done" only after the token verified (it answers 401 before doing anything).
    wait_until(lambda: runs() > before, timeout=10, message="the cleanup function to run")


def _submit_and_finish(api: ApiClient, key: str) -> str:
    job_id = api.submit("test.pipeline", {}, key)["job_id"]
    wait_until(lambda: api.get(job_id)["state"] == "completed", timeout=20, message=f"job {job_id} to complete")
    return job_id


def test_death_is_reported_restarts_work_and_data_dir_keeps_state(tmp_path: Path) -> None:
    deaths: list[ChildDied] = []
    options = StackOptions(data_dir=tmp_path, time_scale=TESTS_TIME_SCALE, cleanup_interval=3600.0)
    with LocalStack(options, on_death=deaths.append) as stack:
        api = ApiClient(stack.api_url)
        job_id = _submit_and_finish(api, "kept")
        handler_url = stack.task_handler_url

        os.killpg(stack.children["task_handler"].pid, signal.SIGKILL)  # a crash nobody asked for
        wait_until(lambda: deaths, timeout=10, message="the death to be reported")
        assert deaths[0].name == "task_handler" and deaths[0].exit_code == -signal.SIGKILL

        stack.restart("task_handler")
        assert stack.task_handler_url == handler_url  # the queue's tasks still name this URL
        stack.restart("firestore")  # on its data dir: nothing is lost
        storage_host = stack.storage_host
        stack.restart("storage")  # the same port and data dir: the functions' clients still find the bucket
        assert stack.storage_host == storage_host
        assert len(list(storage_for(stack).list_blobs(stack.settings().bucket, prefix=f"jobs/{job_id}/"))) == 3
        assert api.get(job_id)["state"] == "completed"
        _submit_and_finish(api, "after-restarts")
        groups = list(stack.pids().values())
    assert len(deaths) == 1  # the restarts and the stop were asked for: not deaths
    assert all_members(groups) == []

    with LocalStack(options) as again:
        assert ApiClient(again.api_url).get(job_id)["state"] == "completed"
        blobs = storage_for(again).list_blobs(again.settings().bucket, prefix=f"jobs/{job_id}/")
        assert sorted(b.name.rsplit("/", 1)[-1] for b in blobs) == ["finish.json", "prepare.json", "work.json"]


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                return proc.stdout.readline()
    raise AssertionError(f"no line from `oncetask dev` within {timeout}s")


def test_sigterm_to_oncetask_dev_stops_every_child_and_leaves_no_process(tmp_path: Path) -> None:
    state_file = tmp_path / "stack.json"
    proc = subprocess.Popen(
        [ONCETASK, "dev", "--json", "--api-port", "0", "--task-handler-port", "0", "--cleanup-port", "0",
         "--time-scale", "0.01", "--cleanup-interval", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "ONCETASK_STACK_FILE": str(state_file)})
    try:
        description = json.loads(_read_line(proc, timeout=60))
        groups = list(description["children"].values())
        assert len(groups) == 6
        assert json.loads(state_file.read_text())["api_url"] == description["api_url"]
        assert requests.get(description["api_url"] + "healthz", timeout=5).status_code == 200
        # Six group leaders plus the gunicorn workers: api 1, task handler 2, cleanup 1 (some may still be forking).
        wait_until(lambda: len(all_members(groups)) >= 6 + 4, timeout=20, message="every process of the stack")
        running = all_members(groups)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert set(running) & set(all_members(groups)) == set()
    assert not state_file.exists()


def test_dev_refuses_a_taken_port_at_once_saying_which(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        assert main(["dev", "--api-port", str(port), "--task-handler-port", "0", "--cleanup-port", "0"]) == 2
        assert time.monotonic() - started < 5  # before anything was started
    err = " ".join(capsys.readouterr().err.split())
    assert f"port {port} for api is in use" in err


def test_a_part_that_cannot_start_is_named_and_the_started_ones_are_stopped() -> None:
    stack = LocalStack(StackOptions(emulator_args={"tasks": ("--no-such-flag",)}))
    try:
        stack.start()
    except StackError as error:
        assert str(error).startswith("tasks exited with 2 before it was ready")
        assert "--no-such-flag" in str(error)  # the child's own last words
    else:
        raise AssertionError("the stack started although the tasks emulator could not")
    assert set(stack.children) == {"firestore", "storage"}  # started beside it, then stopped
    assert all_members([child.pid for child in stack.children.values()]) == []


def test_children_of_a_killed_oncetask_dev_are_ended_by_the_reaper(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [ONCETASK, "dev", "--json", "--api-port", "0", "--task-handler-port", "0", "--cleanup-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "ONCETASK_STACK_FILE": str(tmp_path / "stack.json")})
    try:
        groups = list(json.loads(_read_line(proc, timeout=60))["children"].values())
        assert all_members(groups)
    finally:
        proc.kill()  # no chance to stop anything itself
        proc.wait()
    wait_until(lambda: all_members(groups) == [], timeout=20, message="the reaper to end every child")


def test_a_schedule_fired_as_cloud_scheduler_does_makes_one_job_per_run(local_stack: LocalStack) -> None:
    s = local_stack.settings()
    at = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)
    local_stack.fire_schedule("noop-nightly", at=at, wait=20)
    local_stack.fire_schedule("noop-nightly", at=at, wait=20)  # Cloud Scheduler retried the same run
    local_stack.fire_schedule("noop-nightly", at=at + timedelta(days=1), wait=20)
    db = firestore_api(local_stack.firestore_host, s.project_id)
    keys = sorted(d.to_dict()["idempotency_key"] for d in db.collection("jobs").where(
        filter=firestore.FieldFilter("owner", "==", "schedule:noop-nightly")).stream())
    assert keys == ["schedule:noop-nightly:2026-12-01T03:00:00Z", "schedule:noop-nightly:2026-12-02T03:00:00Z"]


def test_the_next_run_of_a_cron_schedule_is_read_in_its_time_zone() -> None:
    after = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
    assert next_run("0 3 * * *", "UTC", after) == datetime(2026, 6, 2, 3, 0, tzinfo=timezone.utc)
    assert next_run("0 3 * * *", "Europe/Paris", after).astimezone(timezone.utc) == \
        datetime(2026, 6, 2, 1, 0, tzinfo=timezone.utc)  # 03:00 in Paris, summer time
