"""HTTP mapping of the two service-to-service targets: the Cloud Tasks handler and the scheduled cleanup.

Both refuse any caller but the configured service account's Google-signed ID token: 401 without a valid token,
403 for a valid token of another identity.
"""

from __future__ import annotations

from datetime import datetime, timezone

import flask
import pydantic

from .errors import is_retryable
from .httputil import HttpError, error_response, json_response, read_json, to_response
from .logs import bound, get_logger, trace_id_from_headers, trace_resource
from .processor import TaskDelivery
from .services import Services

LOG = get_logger("taskhandler")
BACKEND_RETRY_AFTER_SECONDS = 10


class TaskBody(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")

    job_id: str = pydantic.Field(pattern=r"^[a-f0-9]{32}$")
    generation: int = pydantic.Field(ge=1)


def _authorize(services: Services, request: flask.Request, audience: str, email: str) -> None:
    services.verifier.verify(request.headers.get("Authorization"), audience, frozenset({email}))


SCHEDULE_TIME = "X-CloudScheduler-ScheduleTime"


def _fire_schedule(services: Services, request: flask.Request, name: str) -> flask.Response:
    """One run of a schedule: its job, keyed by the run's scheduled time, so that Cloud Scheduler's retries of the
    same run find the job it already made."""
    schedule = services.schedules.get(name)
    if schedule is None:
        raise HttpError(404, "NOT_FOUND", f"no schedule {name!r}; this app has {sorted(services.schedules)}")
    raw = request.headers.get(SCHEDULE_TIME, "")
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError("no time zone")
    except ValueError:
        raise HttpError(400, "INVALID_ARGUMENT", f"{SCHEDULE_TIME} must be an RFC 3339 time, got {raw!r}",
                        SCHEDULE_TIME) from None
    key = f"schedule:{name}:{when.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    submitted = services.commands.submit(f"schedule:{name}", schedule.job_type, schedule.payload, key,
                                         lane=schedule.lane)
    LOG.info("schedule fired", extra={"fields": {"schedule": name, "job_id": submitted.job_id,
                                                 "status": submitted.status}})
    return json_response(200, {"job_id": submitted.job_id, "status": submitted.status})


def _int_header(request: flask.Request, name: str) -> int:
    try:
        return max(0, int(request.headers.get(name, "0")))
    except ValueError:
        return 0


def process_task(services: Services, request: flask.Request) -> flask.Response:
    # The delivery's trace headers carry the job's trace; the processor binds the one its job records, too.
    trace = trace_resource(trace_id_from_headers(request.headers), services.settings.project_id)
    with bound(trace=trace):  # scoped to this request: server threads are reused
        return _process_task(services, request)


def _process_task(services: Services, request: flask.Request) -> flask.Response:
    s = services.settings
    try:
        if request.method != "POST":
            raise HttpError(405, "METHOD_NOT_ALLOWED", "use POST", headers={"Allow": "POST"})
        _authorize(services, request, s.effective_task_audience, s.tasks_service_account)
        try:
            body = TaskBody.model_validate(read_json(request, s.max_body_bytes))
        except pydantic.ValidationError as exc:
            # A malformed task can never succeed: 2xx would drop it silently, so refuse it loudly (4xx) and let
            # the queue's retry limit end it.
            raise HttpError(400, "INVALID_TASK", f"bad task body: {exc.errors()[0]['msg']}") from exc
        delivery = TaskDelivery(
            job_id=body.job_id,
            generation=body.generation,
            task_name=request.headers.get("X-CloudTasks-TaskName", ""),
            retry_count=_int_header(request, "X-CloudTasks-TaskRetryCount"),
            execution_count=_int_header(request, "X-CloudTasks-TaskExecutionCount"),
        )
        outcome = services.processor.handle(delivery)
        return json_response(outcome.status, outcome.body(), outcome.headers)
    except Exception as exc:  # noqa: BLE001 - mapped to HTTP in one place
        response = to_response(exc)
        if response is not None:
            return response
        if is_retryable(exc):
            # Firestore/Storage down beyond the in-attempt retries: the one answer that should slow the whole queue
            # down (Cloud Tasks throttles it on 503 and honours Retry-After), since every job needs those backends.
            LOG.warning("task handler: transient backend failure", exc_info=exc)
            return error_response(503, "UNAVAILABLE", "a backend is temporarily unavailable",
                                  headers={"Retry-After": str(BACKEND_RETRY_AFTER_SECONDS)})
        LOG.exception("task handler failed")  # a bug: 500, and Cloud Tasks retries it too
        return error_response(500, "INTERNAL", "internal error")


def cleanup_stale_locks(services: Services, request: flask.Request) -> flask.Response:
    """The Cloud Scheduler target: `/` runs the cleanup; `/schedules/{name}` submits that schedule's job."""
    s = services.settings
    trace = trace_resource(trace_id_from_headers(request.headers), s.project_id)
    try:
        _authorize(services, request, s.cleanup_audience, s.scheduler_service_account)
        path = request.path.rstrip("/")
        if path.startswith("/schedules/"):
            with bound(trace=trace, component="schedule"):
                return _fire_schedule(services, request, path.removeprefix("/schedules/"))
        if path:
            raise HttpError(404, "NOT_FOUND", f"no such endpoint: {request.path}")
        with bound(trace=trace, component="cleanup"):
            report = services.cleanup.run()
        return json_response(200, report.to_dict())
    except Exception as exc:  # noqa: BLE001
        response = to_response(exc)
        if response is not None:
            return response
        LOG.exception("cleanup failed")
        return error_response(500, "INTERNAL", "internal error")
