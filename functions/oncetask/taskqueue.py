"""The Cloud Tasks adapter: create a job's task under its deterministic name, ask whether it still exists, send
the HTTP tasks that carry completion callbacks, and read a queue's figures (depth, oldest task, dispatch rate)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2

from .logs import trace_headers
from .naming import task_name
from .policy import transient_retry
from .routing import Router
from .settings import Settings


class Enqueued(StrEnum):
    CREATED = "created"
    ALREADY_EXISTS = "already_exists"  # the same generation's task exists, or ran within the dedup window


class TaskQueue:
    def __init__(self, client: tasks_v2.CloudTasksClient, settings: Settings, router: Router) -> None:
        self.client = client
        self.settings = settings
        self.router = router

    def route(self, job_id: str, job_type: str, lane: str | None = None) -> str:
        """The queue a new job goes to (`KeyError` for a lane the app does not have)."""
        return self.router.queue(job_id, job_type, lane)

    def queue_of(self, job: Any) -> str:
        """A job's queue, as stored when it was created (older jobs: where the app routes them)."""
        return job.queue or self.route(job.job_id, job.job_type)

    def name_for(self, job_id: str, generation: int, incarnation: str = "", *, queue: str, suffix: str = "") -> str:
        return task_name(self.settings.queue_path(queue), job_id, generation, incarnation) + suffix

    def enqueue(self, job_id: str, generation: int, incarnation: str = "", *, queue: str, suffix: str = "",
                run_at: datetime | None = None, trace_id: str | None = None) -> Enqueued:
        """Create the task for one generation of a job (to run at `run_at`, or now). A retried request or a second
        cleanup run names the same task, so Cloud Tasks answers ALREADY_EXISTS instead of creating a second one.
        `suffix` names a second kind of task for the same generation (a parent's wake-up by its children);
        `trace_id`, the job's trace, goes in the trace headers so the delivery joins the job's trace."""
        s = self.settings
        name = self.name_for(job_id, generation, incarnation, queue=queue, suffix=suffix)
        headers = {"Content-Type": "application/json", **(trace_headers(trace_id, name) if trace_id else {})}
        task = tasks_v2.Task(
            name=name,
            http_request=tasks_v2.HttpRequest(
                http_method=tasks_v2.HttpMethod.POST,
                url=s.task_handler_url,
                headers=headers,
                body=json.dumps({"job_id": job_id, "generation": generation}).encode(),
                oidc_token=tasks_v2.OidcToken(
                    service_account_email=s.tasks_service_account, audience=s.effective_task_audience),
            ),
            # Set explicitly so the setting (and Terraform's handler timeout, which equals it) is what Cloud
            # Tasks enforces, not the service's own 10-minute default.
            dispatch_deadline=timedelta(seconds=s.dispatch_deadline_seconds),
        )
        if run_at is not None:
            task.schedule_time = run_at
        return self._create(s.queue_path(queue), task)

    def enqueue_http(self, name: str, url: str, body: bytes, headers: dict[str, str],
                     trace_id: str | None = None) -> Enqueued:
        """An HTTP task to a URL outside oncetask (a completion callback), on the callbacks queue, named so that a
        second attempt to send the same callback creates nothing; it carries the job's trace headers."""
        queue = self.settings.callback_queue_path
        if trace_id:
            headers = {**trace_headers(trace_id, name), **headers}
        task = tasks_v2.Task(
            name=f"{queue}/tasks/{name}",
            http_request=tasks_v2.HttpRequest(http_method=tasks_v2.HttpMethod.POST, url=url, body=body,
                                              headers={"Content-Type": "application/json", **headers}),
        )
        return self._create(queue, task)

    @transient_retry()
    def _create(self, parent: str, task: tasks_v2.Task) -> Enqueued:
        try:
            self.client.create_task(parent=parent, task=task)
        except gexc.AlreadyExists:
            return Enqueued.ALREADY_EXISTS
        return Enqueued.CREATED

    @transient_retry()
    def exists(self, job_id: str, generation: int, incarnation: str = "", *, queue: str) -> bool:
        """Whether the generation's task is still in the queue (NOT_FOUND once it ran, was deleted or gave up)."""
        try:
            self.client.get_task(name=self.name_for(job_id, generation, incarnation, queue=queue))
        except gexc.NotFound:
            return False
        return True

    @transient_retry()
    def delete(self, job_id: str, generation: int, incarnation: str = "", *, queue: str) -> bool:
        """Delete a task that has not run (a scheduled job cancelled while it waits); whether one was deleted."""
        try:
            self.client.delete_task(name=self.name_for(job_id, generation, incarnation, queue=queue))
        except gexc.NotFound:
            return False
        return True


@dataclass(frozen=True)
class QueueReading:
    """One queue's figures, as Cloud Tasks estimates them (v2beta3 `Queue.stats`)."""

    state: str
    depth: int
    oldest_due: datetime | None  # the earliest schedule time among tasks not in flight
    in_flight: int
    dispatched_last_minute: int
    max_rate: float


class QueueReader:
    """Reads a queue's stats: `GetQueue` with `read_mask` naming them, which only the v2beta3 API serves (production
    and our emulator serve it over the same queues as v2). One call per queue."""

    MASK = {"paths": ["name", "state", "stats"]}

    def __init__(self, client: Any, settings: Settings) -> None:  # a tasks_v2beta3.CloudTasksClient
        self.client = client
        self.settings = settings

    @transient_retry()
    def read(self, queue: str) -> QueueReading:
        found = self.client.get_queue(request={"name": self.settings.queue_path(queue), "read_mask": self.MASK},
                                      timeout=10.0)
        stats = found.stats
        return QueueReading(
            state=type(found).State(found.state).name,
            depth=int(stats.tasks_count),
            oldest_due=stats.oldest_estimated_arrival_time or None,
            in_flight=int(stats.concurrent_dispatches_count),
            dispatched_last_minute=int(stats.executed_last_minute_count),
            max_rate=float(stats.effective_execution_rate))
