"""--data-dir: queues, pending tasks with their counts, tombstones and the signing key survive kill -9."""

from __future__ import annotations

import time

import google.auth.transport.requests
import pytest
from google.api_core import exceptions
from google.oauth2 import id_token

from fixtures.tasks import TESTS_TIME_SCALE, wait_until


def test_pending_task_tombstone_and_counts_survive_kill_and_restart(tasks_emulator_factory, tasks_queue_factory,
                                                                    task_target, tmp_path):
    data_dir = str(tmp_path / "tasks-data")
    first = tasks_emulator_factory(data_dir=data_dir)
    client = first.client()
    queue = tasks_queue_factory(first, retry_config={"max_attempts": 10, "min_backoff": "100s",
                                                     "max_backoff": "100s"})
    # Fails once (503), then is retried 100 s later (1 s real): the retry happens after the restart.
    task_target.respond = lambda index, request: 503 if request.headers["X-CloudTasks-TaskName"] == "flaky" else 200
    client.create_task(parent=queue, task={"name": f"{queue}/tasks/done", "http_request": {
        "url": task_target.url, "oidc_token": {"service_account_email": "sa@oncetask-local.iam.gserviceaccount.com"}}})
    client.create_task(parent=queue, task={"name": f"{queue}/tasks/flaky", "http_request": {"url": task_target.url}})
    client.create_task(parent=queue, task={"name": f"{queue}/tasks/later", "http_request": {"url": task_target.url},
                                           "schedule_time": {"seconds": int(time.time()) + 400}})
    task_target.wait_for(2)
    # The "done" task's end is recorded once it is gone from the listing: then kill -9.
    wait_until(lambda: not any(t.name.endswith("/done") for t in client.list_tasks(parent=queue)),
               message="the done task's end to be recorded")
    first.process.kill()

    second = tasks_emulator_factory(data_dir=data_dir)
    client = second.client()
    assert client.get_queue(name=queue).retry_config.max_attempts == 10
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue, task={"name": f"{queue}/tasks/done", "http_request": {"url": task_target.url}})
    # "later" falls due 4 s (real) after its creation: after the kill even on a loaded machine, or it could be
    # dispatched by the first process and, its answer unrecorded at the kill, rightly once more by the second.
    wait_until(lambda: any(r.status and r.headers["X-CloudTasks-TaskName"] == "later" for r in task_target.requests),
               timeout=20, message="the later task after the restart")
    requests = task_target.wait_for(4)
    by_name = {}
    for r in requests:
        by_name.setdefault(r.headers["X-CloudTasks-TaskName"], []).append(r)
    assert [r.headers["X-CloudTasks-TaskRetryCount"] for r in by_name["flaky"]][:2] == ["0", "1"]
    assert by_name["flaky"][1].headers["X-CloudTasks-TaskPreviousResponse"] == "503"
    assert len(by_name["later"]) == 1
    # The signing key came back too: a token minted before the crash verifies against the new JWKS.
    token = by_name["done"][0].headers["Authorization"].split(" ", 1)[1]
    claims = id_token.verify_token(token, google.auth.transport.requests.Request(), task_target.url,
                                   certs_url=second.certs_url)
    assert claims["email"] == "sa@oncetask-local.iam.gserviceaccount.com"


def test_scheduled_delay_is_kept_across_restart(tasks_emulator_factory, tasks_queue_factory, task_target, tmp_path):
    data_dir = str(tmp_path / "tasks-data")
    first = tasks_emulator_factory(data_dir=data_dir)
    queue = tasks_queue_factory(first)
    created = time.monotonic()
    first.client().create_task(parent=queue, task={"http_request": {"url": task_target.url},
                                                   "schedule_time": {"seconds": int(time.time()) + 100}})
    first.process.kill()
    tasks_emulator_factory(data_dir=data_dir)
    [request] = task_target.wait_for(1)
    assert (request.at - created) / TESTS_TIME_SCALE >= 98  # not dispatched early because of the restart
