"""Dispatch of HTTP tasks to a real local target: headers, body, counts, the retry schedule, giving up."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2
from google.rpc import code_pb2

from fixtures.tasks import TESTS_TIME_SCALE, wait_until
from oncetask_emulators.tasks.backoff import RetryPolicy, schedule


def gone(client, name: str) -> bool:
    try:
        client.get_task(name=name)
        return False
    except exceptions.NotFound:
        return True


def test_target_gets_method_headers_body_and_cloud_tasks_headers(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    before = time.time()
    client.create_task(parent=queue, task={
        "name": f"{queue}/tasks/order-42",
        "http_request": {"url": task_target.url + "?x=1", "http_method": tasks_v2.HttpMethod.PUT,
                         "headers": {"Content-Type": "application/json", "X-Custom": "yes"},
                         "body": b'{"job": 42}'},
    })
    [request] = task_target.wait_for(1)
    assert (request.method, request.path, request.body) == ("PUT", "/handler?x=1", b'{"job": 42}')
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Custom"] == "yes"
    assert headers["User-Agent"] == "Google-Cloud-Tasks"
    assert headers["X-CloudTasks-QueueName"] == queue.rsplit("/", 1)[1]
    assert headers["X-CloudTasks-TaskName"] == "order-42"
    assert headers["X-CloudTasks-TaskRetryCount"] == "0"
    assert headers["X-CloudTasks-TaskExecutionCount"] == "0"
    assert before - 1 <= float(headers["X-CloudTasks-TaskETA"]) <= time.time()
    assert "X-CloudTasks-TaskPreviousResponse" not in headers and "Authorization" not in headers


def test_retry_and_execution_counts_on_every_attempt(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(retry_config={"min_backoff": "1s", "max_backoff": "1s"})
    task_target.respond = lambda index, request: [503, 429, 200][index]
    client.create_task(parent=queue, task={"name": f"{queue}/tasks/counted", "http_request": {"url": task_target.url}})
    requests = task_target.wait_for(3)
    headers = [r.headers for r in requests]
    assert [h["X-CloudTasks-TaskRetryCount"] for h in headers] == ["0", "1", "2"]
    assert [h["X-CloudTasks-TaskExecutionCount"] for h in headers] == ["0", "1", "2"]
    assert [h.get("X-CloudTasks-TaskPreviousResponse") for h in headers] == [None, "503", "429"]
    assert "429" in headers[2]["X-CloudTasks-TaskRetryReason"]
    wait_until(lambda: gone(client, f"{queue}/tasks/counted"), message="the succeeded task to be deleted")


def test_backoff_sequence_seen_by_target_matches_the_reference_over_time_scale(
        tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    # min 2 s, max 60 s, 3 doublings: 2, 4, 8, 16, then +16 -> 32, 48, then capped at 60.
    retry = {"max_attempts": 8, "min_backoff": "2s", "max_backoff": "60s", "max_doublings": 3}
    queue = tasks_queue_factory(retry_config=retry)
    task_target.respond = lambda index, request: 500
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url}})
    requests = task_target.wait_for(8, timeout=15)
    measured = [(b.at - a.at) / TESTS_TIME_SCALE for a, b in zip(requests, requests[1:])]
    expected = schedule(RetryPolicy(8, 0, 2, 60, 3), 7)
    assert expected == [2, 4, 8, 16, 32, 48, 60]
    stall = 2.0 / TESTS_TIME_SCALE  # a loaded machine may stall the scheduler or the target for a second or two
    for got, want in zip(measured, expected):
        assert want - 0.2 <= got <= want * 1.1 + stall, (measured, expected)  # never early, never hung
    # Most are late by no more than the scheduler's and the loopback's latency (a few ms of real time).
    on_time = [got <= want * 1.1 + 5 for got, want in zip(measured, expected)]
    assert sum(on_time) >= len(expected) - 2, (measured, expected)


def test_task_is_deleted_after_max_attempts_fail(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(retry_config={"max_attempts": 3, "min_backoff": "1s", "max_backoff": "1s"})
    task_target.respond = lambda index, request: 500
    name = client.create_task(parent=queue, task={"name": f"{queue}/tasks/doomed",
                                                  "http_request": {"url": task_target.url}}).name
    wait_until(lambda: gone(client, name), message="the task to be given up")
    assert len(task_target.wait_for(3)) == 3  # the task is gone, so no attempt can follow
    with pytest.raises(exceptions.AlreadyExists):  # and its name is tombstoned like any other end
        client.create_task(parent=queue, task={"name": name, "http_request": {"url": task_target.url}})


def test_max_retry_duration_keeps_retrying_past_max_attempts_until_it_passes(
        tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(retry_config={"max_attempts": 2, "max_retry_duration": "20s",
                                              "min_backoff": "2s", "max_backoff": "2s"})
    task_target.respond = lambda index, request: 503
    name = client.create_task(parent=queue, task={"http_request": {"url": task_target.url}}).name
    wait_until(lambda: gone(client, name), message="the task to be given up")
    attempts = len(task_target.requests)
    # Attempts every >= 2 s until 20 s after the first: at most 11, and more than max_attempts (2) even on a
    # machine slow enough to stretch every interval.
    assert 3 <= attempts <= 11, attempts


def test_refused_connection_is_a_failed_attempt_without_a_response(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(retry_config={"max_attempts": 5, "min_backoff": "100s", "max_backoff": "100s"})
    name = client.create_task(parent=queue, task={"http_request": {"url": "http://127.0.0.1:9/closed"}}).name

    def attempted():
        task = client.get_task(name=name)
        return task if task.last_attempt.response_time else None

    task = wait_until(attempted, message="the first attempt to fail")
    assert (task.dispatch_count, task.response_count) == (1, 0)
    assert task.last_attempt.response_status.code == code_pb2.UNAVAILABLE
    assert task.first_attempt.dispatch_time


def test_5xx_counts_as_a_response_in_task_fields(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(retry_config={"max_attempts": 5, "min_backoff": "100s", "max_backoff": "100s"})
    task_target.respond = lambda index, request: 503
    name = client.create_task(parent=queue, task={"http_request": {"url": task_target.url}}).name
    task = wait_until(lambda: (t := client.get_task(name=name)).response_count and t, message="a response")
    assert (task.dispatch_count, task.response_count) == (1, 1)
    assert task.last_attempt.response_status.code == code_pb2.UNAVAILABLE
    # The next attempt is scheduled 100 s (scaled) after the failure.
    assert task.schedule_time.timestamp() > time.time() + 0.5


def test_passed_dispatch_deadline_is_a_failed_attempt(tasks_emulator_factory, tasks_queue_factory, task_target):
    # --deadline-scale 0.01 turns the minimum 15 s deadline into 0.15 s; the target takes 1 s.
    emulator = tasks_emulator_factory(deadline_scale=0.01)
    client = emulator.client()
    queue = tasks_queue_factory(emulator, retry_config={"max_attempts": 5, "min_backoff": "1000s",
                                                        "max_backoff": "1000s"})
    task_target.delay = 1.0
    started = time.monotonic()
    name = client.create_task(parent=queue, task={"http_request": {"url": task_target.url},
                                                  "dispatch_deadline": "15s"}).name

    def attempted():
        task = client.get_task(name=name)
        return task if task.last_attempt.response_time else None

    task = wait_until(attempted, message="the attempt to pass its deadline")
    assert time.monotonic() - started < 0.9  # given up on before the target answered
    assert (task.dispatch_count, task.response_count) == (1, 0)
    assert task.last_attempt.response_status.code == code_pb2.DEADLINE_EXCEEDED


def test_future_schedule_time_waits_scaled(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    created = time.monotonic()
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url},
                                           "schedule_time": {"seconds": int(time.time()) + 31}})
    [request] = task_target.wait_for(1)
    waited = (request.at - created) / TESTS_TIME_SCALE
    assert 29 <= waited <= 40, waited


def test_a_target_that_breaks_the_call_is_a_failed_attempt_and_dispatch_goes_on(
        tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(retry_config={"max_attempts": 2, "min_backoff": "1s", "max_backoff": "1s"})
    # TLS to a plain-HTTP server: the handshake fails inside the dispatcher.
    tls_url = task_target.url.replace("http:", "https:")
    broken = client.create_task(parent=queue, task={"http_request": {"url": tls_url}})
    wait_until(lambda: gone(client, broken.name), message="the broken task to be given up")
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url, "body": b"after"}})
    assert task_target.wait_for(1)[-1].body == b"after"


def test_header_with_a_line_break_is_invalid_argument(tasks_emulator, tasks_queue_factory):
    with pytest.raises(exceptions.InvalidArgument, match="not a valid HTTP header"):
        tasks_emulator.client().create_task(parent=tasks_queue_factory(), task={"http_request": {
            "url": "http://127.0.0.1:9/", "headers": {"X-Evil": "a\r\nInjected: 1"}}})
