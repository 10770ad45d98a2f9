"""Validation and defaults of a task as CreateTask receives it. Pure."""

from __future__ import annotations

import datetime
import urllib.parse
import zoneinfo

from google.cloud.tasks_v2.types import target as target_types

from .errors import invalid
from .queueconfig import seconds, set_seconds

HttpMethod = target_types.HttpMethod
MAX_TASK_BYTES = 1024 * 1024
DEFAULT_DEADLINE = 600.0
MIN_DEADLINE, MAX_DEADLINE = 15.0, 1800.0
MAX_SCHEDULE_AHEAD = 720 * 3600.0  # the service refuses a schedule_time more than 720 h (30 days) ahead
BODY_METHODS = {HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH}


def _service_zone() -> datetime.tzinfo:
    try:
        return zoneinfo.ZoneInfo("America/Los_Angeles")
    except zoneinfo.ZoneInfoNotFoundError:  # no tz database on this machine: UTC says the same instant
        return datetime.timezone.utc


def service_time(nanos: int) -> str:
    """A timestamp as the service writes it in messages: `2021-11-01T03:00:00.5-07:00` (fraction only if any)."""
    when = datetime.datetime.fromtimestamp(nanos // 10**9, _service_zone())
    fraction = f"{nanos % 10**9:09d}".rstrip("0")
    offset = when.strftime("%z")
    offset = "Z" if offset == "+0000" and when.tzinfo is datetime.timezone.utc else f"{offset[:3]}:{offset[3:]}"
    return when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + offset


def complete(task, queue, now: float) -> None:
    """Check a new task (in place): an HTTP target with a usable URL, a body only where allowed, limits kept."""
    if task.HasField("app_engine_http_request"):
        raise invalid("app_engine_http_request: this emulator dispatches HTTP tasks only (use http_request)")
    if not task.HasField("http_request"):
        raise invalid("task has no http_request: an HTTP target is required")
    request = task.http_request
    # A queue-level http_target fills what the task leaves out (the URI override is not modelled).
    if queue.HasField("http_target") and queue.http_target.http_method and not request.http_method:
        request.http_method = queue.http_target.http_method
    url = urllib.parse.urlsplit(request.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise invalid(f"http_request.url {request.url!r} must be an absolute http:// or https:// URL")
    if len(request.url) > 2083:
        raise invalid("http_request.url is longer than 2083 characters")
    if request.http_method == HttpMethod.HTTP_METHOD_UNSPECIFIED:
        request.http_method = HttpMethod.POST
    if request.body and request.http_method not in BODY_METHODS:
        raise invalid(f"http_request.body is only allowed with POST, PUT or PATCH, not "
                      f"{HttpMethod(request.http_method).name}")
    for key, value in request.headers.items():
        if not key or any(c in key for c in " :\r\n") or any(c in value for c in "\r\n"):
            raise invalid(f"http_request.headers: {key!r}: {value!r} is not a valid HTTP header")
    if request.HasField("oidc_token") and request.HasField("oauth_token"):
        raise invalid("http_request: give at most one of oidc_token and oauth_token")
    if request.HasField("oidc_token") and not request.oidc_token.service_account_email:
        raise invalid("http_request.oidc_token.service_account_email is required")
    if task.ByteSize() > MAX_TASK_BYTES:
        raise invalid(f"task is {task.ByteSize()} bytes; the maximum is {MAX_TASK_BYTES} bytes")
    if task.HasField("dispatch_deadline"):
        deadline = seconds(task.dispatch_deadline)
        if not MIN_DEADLINE <= deadline <= MAX_DEADLINE:
            raise invalid(f"dispatch_deadline must be between 15s and 30m, got {deadline:g}s")
    else:
        set_seconds(task.dispatch_deadline, DEFAULT_DEADLINE)
    if task.HasField("schedule_time") and task.schedule_time.ToNanoseconds() / 1e9 > now + MAX_SCHEDULE_AHEAD:
        # The service's own words (INVALID_ARGUMENT), its time in RFC 3339 at the service's Pacific offset.
        raise invalid(f"The Task.scheduleTime, {service_time(task.schedule_time.ToNanoseconds())}, is too far in "
                      f"the future. Schedule time must be no more than 720h in the future.")
    for field in ("create_time", "first_attempt", "last_attempt"):
        task.ClearField(field)
    task.dispatch_count = task.response_count = 0
