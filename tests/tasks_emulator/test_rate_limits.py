"""Per-queue rate limits measured at the target: the concurrency cap and the token bucket."""

from __future__ import annotations

import time


def create_many(client, queue: str, url: str, count: int) -> None:
    for _ in range(count):
        client.create_task(parent=queue, task={"http_request": {"url": url}})


def test_never_more_in_flight_than_max_concurrent_dispatches(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(rate_limits={"max_concurrent_dispatches": 3})
    task_target.delay = 0.05
    create_many(client, queue, task_target.url, 15)
    task_target.wait_for(15)
    assert task_target.max_in_flight == 3


def test_dispatch_rate_stays_within_max_dispatches_per_second(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    rate = 40.0
    queue = tasks_queue_factory(rate_limits={"max_dispatches_per_second": rate})
    burst = client.get_queue(name=queue).rate_limits.max_burst_size
    assert burst == 40
    client.pause_queue(name=queue)  # queue them all first, so the bucket alone sets the pace
    create_many(client, queue, task_target.url, 80)
    client.resume_queue(name=queue)
    times = [r.at for r in task_target.wait_for(80)]
    # A token bucket never lets more than burst + rate * window through in any window (+2: arrivals measured at
    # the target can bunch up by a few milliseconds of delivery jitter).
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - times[i]) + 2
    elapsed = times[-1] - times[0]
    assert elapsed >= (80 - burst) / rate * 0.9, elapsed  # the 40 after the burst took about a second
    assert elapsed <= (80 - burst) / rate * 4, elapsed  # and the bucket refilled (loose: CI machines are busy)


def test_rate_limit_change_by_update_queue_takes_effect(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory(rate_limits={"max_dispatches_per_second": 1})
    client.update_queue(queue={"name": queue, "rate_limits": {"max_dispatches_per_second": 500}},
                        update_mask={"paths": ["rate_limits.max_dispatches_per_second"]})
    started = time.monotonic()
    create_many(client, queue, task_target.url, 10)
    task_target.wait_for(10)
    assert time.monotonic() - started < 3  # at 1/s with burst 1 this would take 9 s
