"""Queue.stats through the official v2beta3 client: returned only when the read mask asks, equal to the queue's
real contents (ListTasks) and to what the target saw."""

from __future__ import annotations

import threading
import time

import pytest
from google.api_core import exceptions
from google.cloud import tasks_v2beta3

from fixtures.tasks import PARENT, wait_until

STATS = {"paths": ["stats"]}


def has_stats(queue: tasks_v2beta3.Queue) -> bool:
    return tasks_v2beta3.Queue.pb(queue).HasField("stats")


def stats_of(beta, queue: str) -> tasks_v2beta3.QueueStats:
    return beta.get_queue(request={"name": queue, "read_mask": STATS}).stats


def test_stats_are_left_out_unless_the_read_mask_names_them(tasks_emulator, tasks_queue_factory):
    beta = tasks_emulator.beta_client()
    queue = tasks_queue_factory(rate_limits={"max_dispatches_per_second": 7})
    plain = beta.get_queue(name=queue)
    assert not has_stats(plain)
    assert plain.rate_limits.max_dispatches_per_second == 7  # the same queue the v2 API made
    assert plain.type_ == tasks_v2beta3.Queue.Type.PUSH
    assert [q.name for q in beta.list_queues(parent=PARENT) if q.name == queue and not has_stats(q)] == [queue]

    masked = beta.get_queue(request={"name": queue, "read_mask": {"paths": ["name", "stats"]}})
    assert has_stats(masked) and masked.name == queue
    assert not tasks_v2beta3.Queue.pb(masked).HasField("rate_limits")  # a read mask returns what it names
    listed = [q for q in beta.list_queues(request={"parent": PARENT, "read_mask": STATS}) if has_stats(q)]
    assert len(listed) == len(list(beta.list_queues(parent=PARENT)))
    assert has_stats(beta.get_queue(request={"name": queue, "read_mask": {"paths": ["*"]}}))
    typed = beta.get_queue(request={"name": queue, "read_mask": {"paths": ["type", "state"]}})
    assert typed.type_ == tasks_v2beta3.Queue.Type.PUSH and typed.state == tasks_v2beta3.Queue.State.RUNNING
    assert typed.name == ""  # not asked for


def test_stats_of_waiting_tasks_equal_what_list_tasks_shows(tasks_emulator, tasks_queue_factory, task_target):
    client, beta = tasks_emulator.client(), tasks_emulator.beta_client()
    queue = tasks_queue_factory(rate_limits={"max_dispatches_per_second": 42})
    empty = stats_of(beta, queue)
    assert (empty.tasks_count, empty.concurrent_dispatches_count, empty.executed_last_minute_count) == (0, 0, 0)
    assert not tasks_v2beta3.QueueStats.pb(empty).HasField("oldest_estimated_arrival_time")

    client.pause_queue(name=queue)
    now = int(time.time())
    for ahead in (3600, 60, 86400, 600):
        client.create_task(parent=queue, task={"http_request": {"url": task_target.url},
                                               "schedule_time": {"seconds": now + ahead}})
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url}})  # due now, queue paused
    stats = stats_of(beta, queue)
    listed = list(client.list_tasks(parent=queue))
    assert stats.tasks_count == len(listed) == 5
    assert stats.oldest_estimated_arrival_time == min(t.schedule_time for t in listed)
    assert (stats.concurrent_dispatches_count, stats.executed_last_minute_count) == (0, 0)
    assert stats.effective_execution_rate == 42  # nothing throttled it

    earliest = min(listed, key=lambda t: t.schedule_time)
    client.delete_task(name=earliest.name)
    remaining = list(client.list_tasks(parent=queue))
    stats = stats_of(beta, queue)
    assert stats.tasks_count == len(remaining) == 4
    assert stats.oldest_estimated_arrival_time == min(t.schedule_time for t in remaining) > earliest.schedule_time
    assert task_target.requests == []


def test_stats_count_calls_in_flight_and_replies_as_the_target_saw_them(
        tasks_emulator, tasks_queue_factory, task_target):
    client, beta = tasks_emulator.client(), tasks_emulator.beta_client()
    queue = tasks_queue_factory(retry_config={"min_backoff": "1s", "max_backoff": "1s"})
    task_target.hold = threading.Semaphore(0)
    task_target.respond = lambda index, request: 500 if index < 2 else 200  # two failures, retried
    for _ in range(5):
        client.create_task(parent=queue, task={"http_request": {"url": task_target.url}})
    wait_until(lambda: task_target.in_flight == 5, message="five calls held by the target")

    held = stats_of(beta, queue)
    assert held.concurrent_dispatches_count == task_target.in_flight == 5
    assert held.tasks_count == len(list(client.list_tasks(parent=queue))) == 5
    assert held.executed_last_minute_count == 0
    assert not tasks_v2beta3.QueueStats.pb(held).HasField("oldest_estimated_arrival_time")  # all dispatched

    task_target.hold.release(100)
    wait_until(lambda: not list(client.list_tasks(parent=queue)), message="every task to succeed")
    done = stats_of(beta, queue)
    assert done.executed_last_minute_count == len(task_target.requests) == 7  # 5 first attempts + 2 retries
    assert (done.tasks_count, done.concurrent_dispatches_count) == (0, 0)


def test_stats_of_a_task_waiting_for_its_retry_show_its_next_attempt(tasks_emulator, tasks_queue_factory,
                                                                     task_target):
    client, beta = tasks_emulator.client(), tasks_emulator.beta_client()
    queue = tasks_queue_factory(retry_config={"min_backoff": "3600s", "max_backoff": "3600s"})
    task_target.respond = lambda index, request: 500
    name = client.create_task(parent=queue, task={"http_request": {"url": task_target.url}}).name
    task = wait_until(lambda: (t := client.get_task(name=name)).response_count and t, message="a failed attempt")
    stats = stats_of(beta, queue)
    assert stats.tasks_count == 1  # a failed task that is retried still counts
    assert stats.oldest_estimated_arrival_time == task.schedule_time
    assert stats.executed_last_minute_count == 1


@pytest.mark.parametrize("paths", [["statistics"], ["stats.nothing"]])
def test_a_read_mask_naming_no_queue_field_is_invalid_argument(tasks_emulator, tasks_queue_factory, paths):
    with pytest.raises(exceptions.InvalidArgument, match="not a field of Queue"):
        tasks_emulator.beta_client().get_queue(request={"name": tasks_queue_factory(), "read_mask": {"paths": paths}})


def test_stats_of_a_missing_queue_is_not_found(tasks_emulator):
    with pytest.raises(exceptions.NotFound):
        tasks_emulator.beta_client().get_queue(request={"name": f"{PARENT}/queues/never-made", "read_mask": STATS})


def test_v2beta3_calls_other_than_queue_reads_say_where_to_go(tasks_emulator, tasks_queue_factory):
    with pytest.raises(exceptions.MethodNotImplemented, match="through google.cloud.tasks.v2"):
        tasks_emulator.beta_client().list_tasks(parent=tasks_queue_factory())
