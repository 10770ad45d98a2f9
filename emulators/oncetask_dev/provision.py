"""Creating an app's queues from its manifest, as the Terraform module does in production (development only)."""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import tasks_v2

from oncetask.policy import transient_retry
from oncetask.settings import Settings


def queue_config(settings: Settings, queue: dict[str, Any]) -> dict[str, Any]:
    """A manifest queue as the Cloud Tasks API takes it."""
    return {
        "name": settings.queue_path(queue["name"]),
        "retry_config": {
            "max_attempts": queue["max_attempts"],
            "min_backoff": {"seconds": int(queue["min_backoff_seconds"])},
            "max_backoff": {"seconds": int(queue["max_backoff_seconds"])},
            "max_doublings": queue["max_doublings"],
            "max_retry_duration": {"seconds": int(queue["max_retry_duration_seconds"])},
        },
        "rate_limits": {"max_dispatches_per_second": queue["max_dispatches_per_second"],
                        "max_concurrent_dispatches": queue["max_concurrent_dispatches"]},
    }


def create_queues(client: tasks_v2.CloudTasksClient, settings: Settings, manifest: dict[str, Any]) -> list[str]:
    """Create (or bring up to date) every queue of the manifest; their full names."""
    names = []
    for queue in manifest["queues"]:
        config = queue_config(settings, queue)
        ensure_queue(client, settings, config)
        names.append(config["name"])
    return names


@transient_retry(max_calls=8, max_seconds=30.0)
def ensure_queue(client: tasks_v2.CloudTasksClient, settings: Settings, config: dict[str, Any]) -> None:
    """Create a queue, or update one kept from an earlier run (--data-dir); a transient error is retried, as
    Terraform retries it (a stack's Cloud Tasks emulator may inject faults)."""
    try:
        client.create_queue(parent=settings.location_path, queue=config)
    except gexc.AlreadyExists:
        client.update_queue(queue=config)


def job_queues(settings: Settings, manifest: dict[str, Any]) -> list[str]:
    """The full names of the manifest's job queues (not the callbacks')."""
    return [settings.queue_path(q["name"]) for q in manifest["queues"] if q.get("purpose", "jobs") == "jobs"]
