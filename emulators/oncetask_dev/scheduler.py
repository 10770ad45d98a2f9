"""The local stand-in for Cloud Scheduler: call the cleanup function on an interval, with a real OIDC token.

Production's Cloud Scheduler job calls the cleanup URL with an ID token for the scheduler service account. The
local stack has no Google to sign one, so each tick creates a Cloud Task on a `scheduler` queue of the Tasks
emulator, targeting the cleanup URL with an `oidc_token` for that service account: the emulator signs it, and
the cleanup function verifies it against the emulator's JWKS exactly as it verifies Google's. Nothing about the
verification is relaxed for local use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2

SCHEDULER_QUEUE = "scheduler"


def scheduler_queue(project_id: str, location: str) -> dict:
    """The scheduler queue: one attempt per tick, as a Cloud Scheduler job without retries; the next tick is the
    retry."""
    return {
        "name": f"projects/{project_id}/locations/{location}/queues/{SCHEDULER_QUEUE}",
        "retry_config": {"max_attempts": 1},
        "rate_limits": {"max_dispatches_per_second": 10, "max_concurrent_dispatches": 1},  # overlap: none
    }


def cleanup_task(cleanup_url: str, audience: str, service_account: str,
                 headers: dict[str, str] | None = None) -> tasks_v2.Task:
    return tasks_v2.Task(http_request=tasks_v2.HttpRequest(
        http_method=tasks_v2.HttpMethod.POST,
        url=cleanup_url,
        headers={"Content-Type": "application/json", "User-Agent": "Google-Cloud-Scheduler", **(headers or {})},
        body=b"{}",
        oidc_token=tasks_v2.OidcToken(service_account_email=service_account, audience=audience),
    ))


def trigger_cleanup(client: tasks_v2.CloudTasksClient, queue_path: str, cleanup_url: str, audience: str,
                    service_account: str, wait: float | None = None, headers: dict[str, str] | None = None) -> str:
    """Create one cleanup task (with extra `headers`, e.g. a trace to find its log lines by); with `wait`, block
    until it was dispatched and is gone (TimeoutError if not)."""
    task = client.create_task(parent=queue_path, task=cleanup_task(cleanup_url, audience, service_account, headers))
    if wait is not None:
        deadline = time.monotonic() + wait
        while True:
            try:
                client.get_task(name=task.name)
            except gexc.NotFound:
                break  # dispatched and answered (the queue makes one attempt only)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cleanup task {task.name} was not dispatched within {wait}s")
            time.sleep(0.05)
    return task.name


class SchedulerLoop:
    """Calls `tick()` every `interval` seconds on a daemon thread until stopped; a failing tick is reported to
    `on_error` and the loop goes on (as Cloud Scheduler does)."""

    def __init__(self, tick: Callable[[], object], interval: float,
                 on_error: Callable[[BaseException], None] = lambda exc: None) -> None:
        if interval <= 0:
            raise ValueError(f"the cleanup interval must be positive, got {interval}")
        self.tick = tick
        self.interval = interval
        self.on_error = on_error
        self.ticks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
                self.ticks += 1
            except Exception as exc:  # noqa: BLE001 - a tick's failure must not end the loop
                self.on_error(exc)
