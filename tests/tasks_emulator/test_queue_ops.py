"""Queue and task lifecycle calls: pause, resume, purge, delete, run, update masks, listing and views."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2

from fixtures.tasks import PARENT, wait_until

FUTURE = {"seconds": int(time.time()) + 29 * 86400}  # within the 30-day limit, far beyond any test

HOUR_FROM_NOW = {"seconds": int(time.time()) + 3600}


def test_new_queue_gets_the_service_defaults(tasks_emulator, tasks_queue_factory):
    queue = tasks_emulator.client().get_queue(name=tasks_queue_factory())
    assert queue.state == tasks_v2.Queue.State.RUNNING
    assert (queue.rate_limits.max_dispatches_per_second, queue.rate_limits.max_burst_size,
            queue.rate_limits.max_concurrent_dispatches) == (500, 100, 1000)
    rc = queue.retry_config
    assert (rc.max_attempts, rc.max_doublings) == (100, 16)
    assert (rc.min_backoff.total_seconds(), rc.max_backoff.total_seconds(), rc.max_retry_duration.total_seconds()) \
        == (0.1, 3600, 0)


def test_paused_queue_dispatches_nothing_until_resumed(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    assert client.pause_queue(name=queue).state == tasks_v2.Queue.State.PAUSED
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url}})
    # Proving an absence needs a window: 0.3 s real is 30 s of queue time at the tests' time scale.
    time.sleep(0.3)
    assert task_target.requests == []
    assert len(list(client.list_tasks(parent=queue))) == 1
    assert client.resume_queue(name=queue).state == tasks_v2.Queue.State.RUNNING
    task_target.wait_for(1)


def test_run_task_dispatches_now_even_if_scheduled_later_and_queue_paused(
        tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    client.pause_queue(name=queue)
    name = client.create_task(parent=queue, task={"http_request": {"url": task_target.url},
                                                  "schedule_time": HOUR_FROM_NOW}).name
    ran = client.run_task(name=name)
    assert ran.name == name and ran.dispatch_count == 1
    [request] = task_target.wait_for(1)
    assert request.headers["X-CloudTasks-TaskRetryCount"] == "0"
    wait_until(lambda: not list(client.list_tasks(parent=queue)), message="the run task to be done")


def test_purge_deletes_every_task_and_none_is_dispatched(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    client.pause_queue(name=queue)
    for i in range(5):
        client.create_task(parent=queue, task={"name": f"{queue}/tasks/p{i}", "http_request": {"url": task_target.url}})
    purged = client.purge_queue(name=queue)
    assert purged.purge_time
    assert list(client.list_tasks(parent=queue)) == []
    client.resume_queue(name=queue)
    with pytest.raises(exceptions.AlreadyExists):  # purged names are tombstoned too
        client.create_task(parent=queue, task={"name": f"{queue}/tasks/p0", "http_request": {"url": task_target.url}})
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url}})
    assert len(task_target.wait_for(1)) == 1  # only the task created after the purge


def test_deleted_queue_is_gone_with_its_tasks(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    task = client.create_task(parent=queue, task={"http_request": {"url": "http://127.0.0.1:9/"},
                                                  "schedule_time": FUTURE})
    client.delete_queue(name=queue)
    for call in (lambda: client.get_queue(name=queue), lambda: client.get_task(name=task.name),
                 lambda: client.create_task(parent=queue, task={"http_request": {"url": "http://127.0.0.1:9/"}})):
        with pytest.raises(exceptions.NotFound):
            call()


def test_recreating_a_deleted_queue_too_soon_is_failed_precondition(tasks_emulator_factory, tasks_queue_factory):
    emulator = tasks_emulator_factory(queue_tombstone_seconds=3600)
    client = emulator.client()
    queue = tasks_queue_factory(emulator)
    client.delete_queue(name=queue)
    with pytest.raises(exceptions.FailedPrecondition, match="deleted recently"):
        client.create_queue(parent=PARENT, queue={"name": queue})


def test_update_with_mask_changes_only_the_named_fields(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(retry_config={"max_attempts": 7}, rate_limits={"max_concurrent_dispatches": 9})
    updated = client.update_queue(
        queue={"name": queue, "retry_config": {"max_attempts": 3}, "rate_limits": {"max_concurrent_dispatches": 1}},
        update_mask={"paths": ["retry_config.max_attempts"]})
    assert updated.retry_config.max_attempts == 3
    assert updated.rate_limits.max_concurrent_dispatches == 9
    assert client.get_queue(name=queue).retry_config.max_attempts == 3


def test_update_of_missing_queue_creates_it(tasks_emulator):
    client = tasks_emulator.client()
    name = f"{PARENT}/queues/made-by-update-{int(time.time() * 1000)}"
    client.update_queue(queue={"name": name, "retry_config": {"max_attempts": 4}})
    assert client.get_queue(name=name).retry_config.max_attempts == 4


def test_list_queues_and_tasks_page_through_everything(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    created = [client.create_task(parent=queue, task={"http_request": {"url": "http://127.0.0.1:9/"},
                                                      "schedule_time": FUTURE}).name for _ in range(7)]
    pages = client.list_tasks(request={"parent": queue, "page_size": 3}).pages
    assert [len(p.tasks) for p in pages] == [3, 3, 1]
    assert [t.name for t in client.list_tasks(parent=queue)] == created
    assert queue in [q.name for q in client.list_queues(parent=PARENT)]


def test_basic_view_omits_the_body_and_full_view_returns_it(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    task = client.create_task(parent=queue, task={"http_request": {"url": "http://127.0.0.1:9/", "body": b"payload"},
                                                  "schedule_time": FUTURE})
    assert task.view == tasks_v2.Task.View.BASIC and task.http_request.body == b""
    full = client.get_task(request={"name": task.name, "response_view": tasks_v2.Task.View.FULL})
    assert full.view == tasks_v2.Task.View.FULL and full.http_request.body == b"payload"
    listed = client.list_tasks(request={"parent": queue, "response_view": tasks_v2.Task.View.FULL})
    assert [t.http_request.body for t in listed] == [b"payload"]


@pytest.mark.parametrize("task_fields, problem", [
    ({"http_request": {"url": "http://127.0.0.1:9/", "http_method": tasks_v2.HttpMethod.GET, "body": b"x"}},
     "only allowed with POST, PUT or PATCH"),
    ({"http_request": {"url": "not a url"}}, "absolute http"),
    ({"http_request": {"url": "http://127.0.0.1:9/"}, "dispatch_deadline": "5s"}, "between 15s and 30m"),
    ({"http_request": {"url": "http://127.0.0.1:9/", "body": b"x" * (1024 * 1024 + 1)}}, "maximum is"),
    ({"app_engine_http_request": {"relative_uri": "/"}}, "HTTP tasks only"),
    ({}, "HTTP target is required"),
    ({"http_request": {"url": "http://127.0.0.1:9/"}, "schedule_time": {"seconds": int(time.time()) + 31 * 86400}},
     "no more than 720h in the future"),
])
def test_bad_task_is_invalid_argument_naming_the_problem(tasks_emulator, tasks_queue_factory, task_fields, problem):
    with pytest.raises(exceptions.InvalidArgument, match=problem):
        tasks_emulator.client().create_task(parent=tasks_queue_factory(), task=task_fields)


@pytest.mark.parametrize("queue_fields, problem", [
    ({"rate_limits": {"max_dispatches_per_second": 501}}, "max_dispatches_per_second"),
    ({"rate_limits": {"max_concurrent_dispatches": 5001}}, "max_concurrent_dispatches"),
    ({"retry_config": {"max_attempts": -2}}, "max_attempts"),
    ({"retry_config": {"min_backoff": "20s", "max_backoff": "10s"}}, "must not exceed"),
])
def test_bad_queue_config_is_invalid_argument(tasks_emulator, queue_fields, problem):
    name = f"{PARENT}/queues/bad-{int(time.time() * 1e6)}"
    with pytest.raises(exceptions.InvalidArgument, match=problem):
        tasks_emulator.client().create_queue(parent=PARENT, queue={"name": name, **queue_fields})


def test_duplicate_queue_is_already_exists_and_output_only_mask_is_invalid(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    with pytest.raises(exceptions.AlreadyExists):
        client.create_queue(parent=PARENT, queue={"name": queue})
    with pytest.raises(exceptions.InvalidArgument, match="output only"):
        client.update_queue(queue={"name": queue}, update_mask={"paths": ["rate_limits.max_burst_size"]})
    with pytest.raises(exceptions.InvalidArgument, match="not in parent"):
        client.create_queue(parent="projects/other/locations/us-central1", queue={"name": queue})


def test_run_task_while_it_is_in_flight_is_failed_precondition(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    client.pause_queue(name=queue)
    task_target.delay = 0.5  # holds the first attempt in flight
    name = client.create_task(parent=queue, task={"http_request": {"url": task_target.url}}).name
    client.run_task(name=name)
    with pytest.raises(exceptions.FailedPrecondition, match="being dispatched"):
        client.run_task(name=name)
    task_target.wait_for(1)


def test_task_deleted_during_its_attempt_is_not_brought_back_by_the_result(
        tasks_emulator_factory, tasks_queue_factory, task_target):
    emulator = tasks_emulator_factory()  # its own, so its counters are this test's alone
    client = emulator.client()
    queue = tasks_queue_factory(emulator, retry_config={"min_backoff": "1s", "max_backoff": "1s"})
    task_target.delay = 0.3
    task_target.respond = lambda index, request: 503  # would be retried 1 s (10 ms) later if it still existed
    name = client.create_task(parent=queue, task={"http_request": {"url": task_target.url}}).name
    wait_until(lambda: task_target.requests, message="the attempt to start")
    client.delete_task(name=name)
    wait_until(lambda: emulator.stats()["responses"] == 1, message="the attempt's result to be recorded")
    with pytest.raises(exceptions.NotFound):
        client.get_task(name=name)
    assert list(client.list_tasks(parent=queue)) == []
    assert emulator.stats()["dispatches"] == 1
