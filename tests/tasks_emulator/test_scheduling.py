"""What delayed jobs, priority lanes and sharded queues rest on: the schedule_time limit, cancelling and forcing a
scheduled task, and queues that dispatch independently of each other."""

from __future__ import annotations

import re
import threading
import time

import pytest
from google.api_core import exceptions

from fixtures.tasks import RecordingTarget, wait_until

LIMIT = 720 * 3600  # the service's "no more than 720h in the future"
REFUSAL = re.compile(r"^The Task\.scheduleTime, \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z), is too far "
                     r"in the future\. Schedule time must be no more than 720h in the future\.$")


@pytest.fixture
def second_target():
    target = RecordingTarget().start()
    yield target
    target.close()


def test_a_schedule_time_just_inside_720h_is_accepted_as_given(tasks_emulator, tasks_queue_factory, task_target):
    client, beta = tasks_emulator.client(), tasks_emulator.beta_client()
    queue = tasks_queue_factory()
    when = {"seconds": int(time.time()) + LIMIT - 60, "nanos": 250_000_000}
    task = client.create_task(parent=queue, task={"http_request": {"url": task_target.url}, "schedule_time": when})
    assert client.get_task(name=task.name).schedule_time == task.schedule_time
    assert task.schedule_time.timestamp() == pytest.approx(when["seconds"] + 0.25)
    stats = beta.get_queue(request={"name": queue, "read_mask": {"paths": ["stats"]}}).stats
    assert stats.oldest_estimated_arrival_time == task.schedule_time


def test_a_task_scheduled_just_inside_720h_is_dispatched_at_its_time(tasks_emulator_factory, tasks_queue_factory,
                                                                      task_target):
    scale = 1e-6  # 720 h become 2.6 s
    emulator = tasks_emulator_factory(time_scale=scale)
    queue = tasks_queue_factory(emulator)
    when = int(time.time()) + LIMIT - 60
    created = time.monotonic()
    emulator.client().create_task(parent=queue, task={"http_request": {"url": task_target.url},
                                                      "schedule_time": {"seconds": when}})
    [request] = task_target.wait_for(1, timeout=60)  # due in 2.6 s; a loaded machine may take far longer
    assert (request.at - created) / scale >= LIMIT - 62  # not early (the 2 s: whole seconds in `when`)
    assert float(request.headers["X-CloudTasks-TaskETA"]) == when  # the ETA is the schedule the caller gave


def test_a_schedule_time_past_720h_is_refused_with_the_services_code_and_message(tasks_emulator,
                                                                                  tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    with pytest.raises(exceptions.InvalidArgument) as refused:
        client.create_task(parent=queue, task={"http_request": {"url": "http://127.0.0.1:9/"},
                                               "schedule_time": {"seconds": int(time.time()) + LIMIT + 60}})
    assert REFUSAL.match(refused.value.message), refused.value.message
    assert list(client.list_tasks(parent=queue)) == []


def test_a_schedule_time_in_the_past_is_dispatched_at_once(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url},
                                           "schedule_time": {"seconds": int(time.time()) - 86400}})
    task_target.wait_for(1)


def test_deleting_a_scheduled_task_cancels_it_while_it_waits(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    now = int(time.time())
    cancelled = client.create_task(parent=queue, task={"http_request": {"url": task_target.url, "body": b"cancelled"},
                                                       "schedule_time": {"seconds": now + 50}})
    client.delete_task(name=cancelled.name)
    # A later task on the same queue: once it has arrived, the deleted one (due earlier) would have too.
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url, "body": b"sentinel"},
                                           "schedule_time": {"seconds": now + 70}})
    task_target.wait_for(1)
    time.sleep(0.05)
    assert [r.body for r in task_target.requests] == [b"sentinel"]
    with pytest.raises(exceptions.NotFound):
        client.get_task(name=cancelled.name)


def test_run_task_dispatches_a_scheduled_task_at_once_and_only_once(tasks_emulator, tasks_queue_factory,
                                                                    task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    now = int(time.time())
    forced = client.create_task(parent=queue, task={"http_request": {"url": task_target.url, "body": b"forced"},
                                                    "schedule_time": {"seconds": now + 3600}})
    started = time.monotonic()
    assert client.run_task(name=forced.name).dispatch_count == 1
    [request] = task_target.wait_for(1)
    assert request.at - started < 36 * 0.5  # long before its schedule (36 s of real time at the tests' scale)
    wait_until(lambda: not list(client.list_tasks(parent=queue)), message="the forced task to be done")
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url, "body": b"sentinel"},
                                           "schedule_time": {"seconds": now + 20}})
    task_target.wait_for(2)
    time.sleep(0.05)
    assert [r.body for r in task_target.requests] == [b"forced", b"sentinel"]


def test_a_queue_saturated_by_a_slow_target_does_not_delay_another_queue(
        tasks_emulator, tasks_queue_factory, task_target, second_target):
    client = tasks_emulator.client()
    slow_queue, fast_queue = tasks_queue_factory(), tasks_queue_factory()
    task_target.hold = threading.Semaphore(0)  # the slow target answers nothing until released
    held = 300  # more calls than the emulator had threads before queues were made independent (256)
    for _ in range(held):
        client.create_task(parent=slow_queue, task={"http_request": {"url": task_target.url}})
    try:
        wait_until(lambda: task_target.in_flight == held, timeout=30, message=f"{held} calls held by the slow target")
        client.create_task(parent=fast_queue, task={"http_request": {"url": second_target.url}})
        second_target.wait_for(1)
        assert task_target.in_flight == held and not any(r.status for r in task_target.requests)
    finally:
        task_target.hold.release(10 * held)
    task_target.wait_for(held, timeout=30)


def test_a_queue_held_back_by_its_rate_does_not_delay_another_queue(
        tasks_emulator, tasks_queue_factory, task_target, second_target):
    client = tasks_emulator.client()
    limited = tasks_queue_factory(rate_limits={"max_dispatches_per_second": 1})
    free = tasks_queue_factory()
    for _ in range(20):
        client.create_task(parent=limited, task={"http_request": {"url": task_target.url}})
    for _ in range(5):
        client.create_task(parent=free, task={"http_request": {"url": second_target.url}})
    second_target.wait_for(5)
    assert len(task_target.requests) < 20  # the limited queue needs 19 s for its twenty


def test_at_the_thread_cap_a_freed_thread_goes_to_the_queue_that_waited_longest(
        tasks_emulator_factory, tasks_queue_factory, task_target, second_target):
    emulator = tasks_emulator_factory(dispatch_workers=4)
    client = emulator.client()
    backlog, waiting = tasks_queue_factory(emulator), tasks_queue_factory(emulator)
    client.pause_queue(name=waiting)
    client.create_task(parent=waiting, task={"http_request": {"url": second_target.url}})
    task_target.hold = threading.Semaphore(0)
    for _ in range(10):
        client.create_task(parent=backlog, task={"http_request": {"url": task_target.url}})
    try:
        wait_until(lambda: task_target.in_flight == 4, message="the four threads held by the backlog's target")
        client.resume_queue(name=waiting)  # its task is ready, and finds no thread
        task_target.hold.release()  # one thread comes free: the waiting queue's turn, not the backlog's
        second_target.wait_for(1)
        task_target.hold.release()
        fifth = wait_until(lambda: len(task_target.requests) >= 5 and task_target.requests[4],
                           message="the backlog's fifth call")
        assert second_target.requests[0].at < fifth.at
    finally:
        task_target.hold.release(100)
    task_target.wait_for(10)
