"""Task names: validation, de-duplication of live and tombstoned names, random IDs for unnamed tasks."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from google.api_core import exceptions

from fixtures.tasks import PARENT, wait_until

FUTURE = {"seconds": int(time.time()) + 29 * 86400}  # within the 30-day limit, far beyond any test


def http_task(url: str, name: str | None = None, **fields: object) -> dict:
    task: dict = {"http_request": {"url": url, **fields}}
    if name:
        task["name"] = name
    return task


def test_second_create_with_same_name_is_already_exists(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    client.create_task(parent=queue, task={**http_task("http://127.0.0.1:9/", f"{queue}/tasks/job-1"),
                                           "schedule_time": FUTURE})
    with pytest.raises(exceptions.AlreadyExists, match="already exists"):
        client.create_task(parent=queue, task=http_task("http://127.0.0.1:9/", f"{queue}/tasks/job-1"))


def test_name_of_executed_task_is_refused_within_tombstone_window(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    name = f"{queue}/tasks/done-once"
    client.create_task(parent=queue, task=http_task(task_target.url, name))
    task_target.wait_for(1)
    wait_until(lambda: _missing(client, name), message="the executed task to be gone")
    with pytest.raises(exceptions.AlreadyExists, match="executed or deleted"):
        client.create_task(parent=queue, task=http_task(task_target.url, name))


def test_name_of_deleted_task_is_refused_within_tombstone_window(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    name = f"{queue}/tasks/deleted"
    client.create_task(parent=queue, task={**http_task("http://127.0.0.1:9/", name),
                                           "schedule_time": FUTURE})
    client.delete_task(name=name)
    with pytest.raises(exceptions.AlreadyExists):
        client.create_task(parent=queue, task=http_task("http://127.0.0.1:9/", name))


def test_name_is_accepted_again_after_the_tombstone_expires(tasks_emulator_factory, tasks_queue_factory, task_target):
    emulator = tasks_emulator_factory(tombstone_seconds=0.5)
    client = emulator.client()
    queue = tasks_queue_factory(emulator)
    name = f"{queue}/tasks/again"
    client.create_task(parent=queue, task=http_task(task_target.url, name))
    task_target.wait_for(1)
    wait_until(lambda: _missing(client, name), message="the executed task to be gone")

    def accepted() -> bool:
        try:
            client.create_task(parent=queue, task=http_task(task_target.url, name))
            return True
        except exceptions.AlreadyExists:
            return False

    wait_until(accepted, timeout=5, interval=0.1, message="the name to be accepted again")
    task_target.wait_for(2)


def test_unnamed_tasks_get_distinct_random_ids_and_are_never_deduplicated(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    task = {**http_task("http://127.0.0.1:9/"), "schedule_time": FUTURE}
    names = {client.create_task(parent=queue, task=task).name for _ in range(20)}
    assert len(names) == 20
    assert all(n.startswith(f"{queue}/tasks/") and n.rsplit("/", 1)[1].isdigit() for n in names)


@pytest.mark.parametrize("task_id, problem", [
    ("has.dot", "letters, digits, hyphens or underscores"),
    ("x" * 501, "1-500"),
    ("", "1-500"),
])
def test_bad_task_id_is_invalid_argument_naming_the_problem(tasks_emulator, tasks_queue_factory, task_id, problem):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    with pytest.raises(exceptions.InvalidArgument, match=problem):
        client.create_task(parent=queue, task=http_task("http://127.0.0.1:9/", f"{queue}/tasks/{task_id}"))


def test_task_named_in_another_queue_is_invalid_argument(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue, other = tasks_queue_factory(), tasks_queue_factory()
    with pytest.raises(exceptions.InvalidArgument, match="is not in queue"):
        client.create_task(parent=queue, task=http_task("http://127.0.0.1:9/", f"{other}/tasks/t1"))


def test_bad_queue_id_is_invalid_argument(tasks_emulator):
    with pytest.raises(exceptions.InvalidArgument, match="letters, digits or hyphens"):
        tasks_emulator.client().create_queue(parent=PARENT, queue={"name": f"{PARENT}/queues/under_score"})


def test_missing_queue_and_task_are_not_found(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    with pytest.raises(exceptions.NotFound, match="queue"):
        client.get_queue(name=f"{PARENT}/queues/never-made")
    with pytest.raises(exceptions.NotFound, match="queue"):
        client.create_task(parent=f"{PARENT}/queues/never-made", task=http_task("http://127.0.0.1:9/"))
    queue = tasks_queue_factory()
    with pytest.raises(exceptions.NotFound, match="task"):
        client.get_task(name=f"{queue}/tasks/none")
    with pytest.raises(exceptions.NotFound):
        client.run_task(name=f"{queue}/tasks/none")


def _missing(client, name: str) -> bool:
    try:
        client.get_task(name=name)
        return False
    except exceptions.NotFound:
        return True


def test_concurrent_creates_of_one_name_make_exactly_one_task(tasks_emulator, tasks_queue_factory):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    task = {"name": f"{queue}/tasks/raced", "http_request": {"url": "http://127.0.0.1:9/"}, "schedule_time": FUTURE}
    barrier = threading.Barrier(8)

    def create() -> str:
        barrier.wait()
        try:
            client.create_task(parent=queue, task=task)
            return "created"
        except exceptions.AlreadyExists:
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: create(), range(8)))
    assert sorted(outcomes) == ["created"] + ["refused"] * 7
