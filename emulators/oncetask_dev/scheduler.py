"""The local stand-in for Cloud Scheduler: call the cleanup function on an interval, and the app's schedules at the
times their cron expressions name, each with a real OIDC token.

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
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

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


def schedule_task(cleanup_url: str, name: str, at: datetime, audience: str, service_account: str) -> tasks_v2.Task:
    """What Cloud Scheduler sends for one run of a schedule: its URL, its OIDC token, and the run's time."""
    task = cleanup_task(cleanup_url.rstrip("/") + f"/schedules/{name}", audience, service_account)
    task.http_request.headers["X-CloudScheduler-ScheduleTime"] = at.astimezone(timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    return task


def next_run(cron: str, time_zone: str, after: datetime) -> datetime:
    """The first time after `after` that `cron` names, in `time_zone` (as Cloud Scheduler reads it)."""
    from croniter import croniter  # noqa: PLC0415

    return croniter(cron, after.astimezone(ZoneInfo(time_zone))).get_next(datetime)


def trigger_cleanup(client: tasks_v2.CloudTasksClient, queue_path: str, cleanup_url: str, audience: str,
                    service_account: str, wait: float | None = None, headers: dict[str, str] | None = None,
                    task: tasks_v2.Task | None = None) -> str:
    """Create one cleanup task (with extra `headers`, e.g. a trace to find its log lines by), or `task` (e.g. a
    schedule's run); with `wait`, block until it was dispatched and is gone (TimeoutError if not)."""
    task = client.create_task(parent=queue_path,
                              task=task or cleanup_task(cleanup_url, audience, service_account, headers))
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


class CronLoop:
    """Fires each schedule at the times its cron expression names (`fire(name, at)`), on a daemon thread."""

    def __init__(self, schedules: list[dict], fire: Callable[[str, datetime], object],
                 on_error: Callable[[BaseException], None] = lambda exc: None) -> None:
        self.schedules = schedules
        self.fire = fire
        self.on_error = on_error
        self.fired = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cron", daemon=True)

    def start(self) -> None:
        if self.schedules:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        now = datetime.now(timezone.utc)
        due = {s["name"]: next_run(s["cron"], s["time_zone"], now) for s in self.schedules}
        by_name = {s["name"]: s for s in self.schedules}
        while not self._stop.is_set():
            name, at = min(due.items(), key=lambda item: item[1])
            if self._stop.wait(max(0.0, (at - datetime.now(timezone.utc)).total_seconds())):
                return
            try:
                self.fire(name, at)
                self.fired += 1
            except Exception as exc:  # noqa: BLE001 - as Cloud Scheduler, a failed run does not end the schedule
                self.on_error(exc)
            due[name] = next_run(by_name[name]["cron"], by_name[name]["time_zone"], at)


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
