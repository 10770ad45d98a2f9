"""Resource names: `projects/P/locations/L/queues/Q[/tasks/T]`, validated as the service does."""

from __future__ import annotations

import re
import secrets

from .errors import invalid

# Project IDs may also carry a domain prefix ("example.com:my-project"); locations are lower-case regions.
_PROJECT = r"[a-z0-9][a-z0-9\-.:]{0,99}"
_LOCATION = r"[a-z0-9][a-z0-9\-]{0,62}"
_QUEUE_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_TASK_ID = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
_PARENT = re.compile(rf"^projects/({_PROJECT})/locations/({_LOCATION})$")
_QUEUE = re.compile(rf"^projects/({_PROJECT})/locations/({_LOCATION})/queues/([^/]*)$")
_TASK = re.compile(rf"^projects/({_PROJECT})/locations/({_LOCATION})/queues/([^/]*)/tasks/([^/]*)$")


def location(name: str) -> str:
    """Validate a `projects/P/locations/L` parent."""
    if not _PARENT.match(name or ""):
        raise invalid(f"parent {name!r} is not of the form projects/PROJECT/locations/LOCATION")
    return name


def queue(name: str) -> str:
    """Validate a queue name; the ID is letters, digits and hyphens, at most 100 characters."""
    m = _QUEUE.match(name or "")
    if not m:
        raise invalid(f"queue name {name!r} is not of the form projects/PROJECT/locations/LOCATION/queues/QUEUE_ID")
    if not _QUEUE_ID.match(m.group(3)):
        raise invalid(f"queue ID {m.group(3)!r} must be 1-100 letters, digits or hyphens")
    return name


def task(name: str) -> str:
    """Validate a task name; the ID is letters, digits, hyphens and underscores, at most 500 characters."""
    m = _TASK.match(name or "")
    if not m:
        raise invalid(
            f"task name {name!r} is not of the form projects/PROJECT/locations/LOCATION/queues/QUEUE_ID/tasks/TASK_ID"
        )
    queue(queue_of(name))
    if not _TASK_ID.match(m.group(4)):
        raise invalid(f"task ID {m.group(4)!r} must be 1-500 letters, digits, hyphens or underscores")
    return name


def parent_of(queue_name: str) -> str:
    return queue_name.rsplit("/queues/", 1)[0]


def queue_of(task_name: str) -> str:
    return task_name.rsplit("/tasks/", 1)[0]


def short(name: str) -> str:
    """The last path segment: what the X-CloudTasks-QueueName / -TaskName headers carry."""
    return name.rsplit("/", 1)[-1]


def random_task_name(queue_name: str) -> str:
    """A name for a task created without one: a random decimal ID, like the service's."""
    return f"{queue_name}/tasks/{secrets.randbits(63)}"
