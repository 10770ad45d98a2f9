"""The emulator as a process: its CLI, its clean stop, its stats, and injected target faults."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from google.api_core import exceptions

from fixtures.tasks import wait_until


def test_sigterm_stops_it_cleanly(tasks_emulator_factory):
    emulator = tasks_emulator_factory()
    emulator.process.proc.send_signal(signal.SIGTERM)
    assert emulator.process.proc.wait(10) == 0


def test_bad_target_fault_spec_exits_with_a_message():
    result = subprocess.run([sys.executable, "-m", "oncetask_emulators.tasks", "--port", "0", "--http-port", "0",
                             "--target-fault", "EXPLODE:0.5"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "EXPLODE" in result.stderr


def test_bad_time_scale_is_refused():
    result = subprocess.run([sys.executable, "-m", "oncetask_emulators.tasks", "--time-scale", "0"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "must be positive" in result.stderr


def test_target_fault_fail_counts_attempts_as_503_without_calling_the_target(
        tasks_emulator_factory, tasks_queue_factory, task_target):
    emulator = tasks_emulator_factory(target_fault="FAIL:1.0")
    client = emulator.client()
    queue = tasks_queue_factory(emulator, retry_config={"max_attempts": 3, "min_backoff": "1s", "max_backoff": "1s"})
    client.create_task(parent=queue, task={"http_request": {"url": task_target.url}})
    stats = wait_until(lambda: (s := emulator.stats())["tasks_given_up"] == 1 and s, message="the task to give up")
    assert (stats["dispatches"], stats["responses"], stats["failed_attempts"]) == (3, 3, 3)
    assert stats["target_faults"] == {"FAIL": 3}
    assert task_target.requests == []


def test_stats_count_creates_dispatches_and_pending_per_queue(tasks_emulator_factory, tasks_queue_factory,
                                                             task_target):
    emulator = tasks_emulator_factory()
    client = emulator.client()
    queue = tasks_queue_factory(emulator)
    client.pause_queue(name=queue)
    for _ in range(3):
        client.create_task(parent=queue, task={"http_request": {"url": task_target.url}})
    stats = emulator.stats()
    assert stats["tasks_created"] == 3 and stats["dispatches"] == 0
    assert stats["queues"][queue] == {"pending": 3, "in_flight": 0, "state": "PAUSED"}
    client.resume_queue(name=queue)
    wait_until(lambda: emulator.stats()["successes"] == 3, message="three successes")
    assert emulator.stats()["queues"][queue]["pending"] == 0


def test_grpc_fault_spec_fails_calls_with_that_code(tasks_emulator_factory):
    emulator = tasks_emulator_factory(fault="UNAVAILABLE:1.0")
    with pytest.raises(exceptions.ServiceUnavailable, match="injected fault"):
        emulator.client().get_queue(name="projects/p/locations/l/queues/q", retry=None)


def test_sigterm_stops_it_promptly_even_with_a_dispatch_in_flight(tasks_emulator_factory, tasks_queue_factory,
                                                                  task_target):
    emulator = tasks_emulator_factory()
    queue = tasks_queue_factory(emulator)
    task_target.delay = 30  # a handler far slower than any stop should wait for
    emulator.client().create_task(parent=queue, task={"http_request": {"url": task_target.url}})
    wait_until(lambda: task_target.requests, message="the dispatch to start")
    emulator.process.proc.send_signal(signal.SIGTERM)
    assert emulator.process.proc.wait(5) == 0
