"""The Cloud Tasks adapter: create a job's task under its deterministic name, and ask whether it still exists."""

from __future__ import annotations

import json
from datetime import timedelta
from enum import StrEnum

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2

from .naming import task_name
from .policy import transient_retry
from .settings import Settings


class Enqueued(StrEnum):
    CREATED = "created"
    ALREADY_EXISTS = "already_exists"  # the same generation's task exists, or ran within the dedup window


class TaskQueue:
    def __init__(self, client: tasks_v2.CloudTasksClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def name_for(self, job_id: str, generation: int, incarnation: str = "") -> str:
        return task_name(self.settings.queue_path, job_id, generation, incarnation)

    @transient_retry()
    def enqueue(self, job_id: str, generation: int, incarnation: str = "") -> Enqueued:
        """Create the task for one generation of a job. A retried request or a second cleanup run names the same
        task, so Cloud Tasks answers ALREADY_EXISTS instead of creating a second one."""
        s = self.settings
        task = tasks_v2.Task(
            name=self.name_for(job_id, generation, incarnation),
            http_request=tasks_v2.HttpRequest(
                http_method=tasks_v2.HttpMethod.POST,
                url=s.task_handler_url,
                headers={"Content-Type": "application/json"},
                body=json.dumps({"job_id": job_id, "generation": generation}).encode(),
                oidc_token=tasks_v2.OidcToken(
                    service_account_email=s.tasks_service_account, audience=s.effective_task_audience),
            ),
            # Set explicitly so the setting (and Terraform's handler timeout, which equals it) is what Cloud
            # Tasks enforces, not the service's own 10-minute default.
            dispatch_deadline=timedelta(seconds=s.dispatch_deadline_seconds),
        )
        try:
            self.client.create_task(parent=s.queue_path, task=task)
        except gexc.AlreadyExists:
            return Enqueued.ALREADY_EXISTS
        return Enqueued.CREATED

    @transient_retry()
    def exists(self, job_id: str, generation: int, incarnation: str = "") -> bool:
        """Whether the generation's task is still in the queue (NOT_FOUND once it ran, was deleted or gave up)."""
        try:
            self.client.get_task(name=self.name_for(job_id, generation, incarnation))
        except gexc.NotFound:
            return False
        return True
