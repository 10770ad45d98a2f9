"""System throttling against a real target: 429/503 lower the queue's effective rate (not its settings), the rate
recovers on 2xx, Retry-After sets the task's next attempt, and other failures back off only their task."""

from __future__ import annotations

import email.utils
import time

import pytest

from fixtures.tasks import TESTS_TIME_SCALE, wait_until

CONFIGURED = 20.0


def effective_rate(beta, queue: str) -> float:
    return beta.get_queue(request={"name": queue, "read_mask": {"paths": ["stats"]}}).stats.effective_execution_rate


def create(client, queue: str, url: str, count: int = 1) -> list[str]:
    return [client.create_task(parent=queue, task={"http_request": {"url": url}}).name for _ in range(count)]


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_answers_lower_the_effective_rate_and_successes_bring_it_back(
        tasks_emulator, tasks_queue_factory, task_target, status):
    client, beta = tasks_emulator.client(), tasks_emulator.beta_client()
    queue = tasks_queue_factory(rate_limits={"max_dispatches_per_second": CONFIGURED},
                                retry_config={"min_backoff": "1s", "max_backoff": "1s"})
    task_target.respond = lambda index, request: status if index < 2 else 200
    create(client, queue, task_target.url)
    task_target.wait_for(3)  # two throttling answers, then the success
    wait_until(lambda: not list(client.list_tasks(parent=queue)), message="the task to succeed")
    throttled = effective_rate(beta, queue)
    assert 1 <= throttled < CONFIGURED / 2, throttled
    assert client.get_queue(name=queue).rate_limits.max_dispatches_per_second == CONFIGURED  # settings untouched

    # The queue now paces to its effective rate: 12 tasks queued at once cannot all go in one burst. With a burst of
    # ceil(rate) and the rate rising 10% a success, the last needs at least (12 - burst) tokens at a rate that is
    # still below CONFIGURED, a lower bound no slow machine can break.
    client.pause_queue(name=queue)
    create(client, queue, task_target.url, 12)
    before = len(task_target.requests)
    client.resume_queue(name=queue)
    arrivals = [r.at for r in task_target.wait_for(before + 12)[before:]]
    burst = int(throttled) + 1
    assert arrivals[-1] - arrivals[0] >= (12 - burst) / CONFIGURED, (throttled, arrivals[-1] - arrivals[0])

    # Healthy answers bring it back to the configured rate, step by step.
    create(client, queue, task_target.url, 30)
    wait_until(lambda: effective_rate(beta, queue) == CONFIGURED, timeout=20, message="the rate to recover")


@pytest.mark.parametrize("status", [400, 409, 424, 500])
def test_other_failures_back_off_only_their_task_and_do_not_throttle_the_queue(
        tasks_emulator, tasks_queue_factory, task_target, status):
    client, beta = tasks_emulator.client(), tasks_emulator.beta_client()
    queue = tasks_queue_factory(rate_limits={"max_dispatches_per_second": CONFIGURED},
                                retry_config={"min_backoff": "1s", "max_backoff": "1s"})
    task_target.respond = lambda index, request: status if index < 6 else 200
    create(client, queue, task_target.url, 3)
    wait_until(lambda: len(task_target.requests) >= 9 and not list(client.list_tasks(parent=queue)),
               message="every task to succeed after its failures")
    assert sum(r.status == status for r in task_target.requests) == 6
    assert effective_rate(beta, queue) == CONFIGURED


def retry_after_in_seconds(seconds: int) -> str:
    return str(seconds)


def retry_after_as_a_date(seconds: int) -> str:
    return email.utils.formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize("header", [retry_after_in_seconds, retry_after_as_a_date])
def test_retry_after_on_a_503_sets_the_earliest_retry_of_that_task(
        tasks_emulator, tasks_queue_factory, task_target, header):
    client = tasks_emulator.client()
    # The retry config alone would retry after 1 s (10 ms here); the target asks for 150 s (1.5 s here).
    queue = tasks_queue_factory(retry_config={"min_backoff": "1s", "max_backoff": "1s"})
    task_target.respond = lambda index, request: (503, {"Retry-After": header(150)}) if index == 0 else 200
    name = create(client, queue, task_target.url)[0]
    task = wait_until(lambda: (t := client.get_task(name=name)).response_count and t, message="the 503")
    assert task.schedule_time.timestamp() >= time.time() + 0.5  # the next attempt is set well past the backoff
    first, second = task_target.wait_for(2, timeout=15)
    waited = (second.at - first.at) / TESTS_TIME_SCALE
    assert waited >= 148, waited  # never early (a date has whole seconds: one may be lost to rounding)
    assert second.headers["X-CloudTasks-TaskPreviousResponse"] == "503"


def test_retry_after_on_other_statuses_is_not_what_sets_the_retry(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(retry_config={"min_backoff": "1s", "max_backoff": "1s"})
    # Retry-After 100000 s would be 1000 s of real time here: the retry config's 10 ms applies instead.
    task_target.respond = lambda index, request: (500, {"Retry-After": "100000"}) if index == 0 else 200
    create(client, queue, task_target.url)
    task_target.wait_for(2, timeout=30)


def test_a_target_that_refuses_connections_throttles_the_queue(tasks_emulator, tasks_queue_factory):
    client, beta = tasks_emulator.client(), tasks_emulator.beta_client()
    queue = tasks_queue_factory(rate_limits={"max_dispatches_per_second": CONFIGURED},
                                retry_config={"max_attempts": 1})
    create(client, queue, "http://127.0.0.1:9/closed", 12)  # no response at all, twelve times: a high error rate
    wait_until(lambda: not list(client.list_tasks(parent=queue)), message="every task to be given up")
    assert effective_rate(beta, queue) < CONFIGURED
