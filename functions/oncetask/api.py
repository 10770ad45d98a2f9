"""The public HTTP API: parse the request, call the commands, map the result to HTTP. Nothing else."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from importlib import resources

import flask
import pydantic

from .auth import Unauthenticated
from .errors import InvalidRequest
from .errors import is_retryable
from .job import Job
from .httputil import HttpError, error_response, json_response, read_json, to_response
from .logs import bound, get_logger, new_trace_id, trace_id_from_headers, trace_resource
from .children import child_id
from .models import ChildrenView, CreateJobRequest, CreateJobResponse, JobList, JobView, Stats, Timeline
from .naming import is_job_id
from .services import Services
from .states import JobState

LOG = get_logger("api")
ANONYMOUS = "anonymous"
MAX_LIST_LIMIT = 100

Handler = Callable[[Services, flask.Request, str, dict[str, str]], flask.Response]


def handle(services: Services, request: flask.Request) -> flask.Response:
    # The caller's trace (or a new one): a job submitted here keeps it, and its tasks and their logs carry it.
    trace_id = trace_id_from_headers(request.headers) or new_trace_id()
    with bound(trace=trace_resource(trace_id, services.settings.project_id)):  # this request only: threads are reused
        return _handle(services, request)


def _handle(services: Services, request: flask.Request) -> flask.Response:
    try:
        handler, params = _route(request.method, request.path)
        if handler in PUBLIC:
            return handler(services, request, ANONYMOUS, params)
        return handler(services, request, _owner(services, request), params)
    except Exception as exc:  # noqa: BLE001 - mapped to HTTP in one place
        response = to_response(exc)
        if response is not None:
            return response
        if is_retryable(exc):
            LOG.warning("transient failure", exc_info=exc)
            return error_response(503, "UNAVAILABLE", "a backend is temporarily unavailable; retry")
        LOG.exception("unexpected error")
        return error_response(500, "INTERNAL", "internal error")


def _owner(services: Services, request: flask.Request) -> str:
    s = services.settings
    if not s.api_require_auth:
        return ANONYMOUS
    identity = services.verifier.verify(request.headers.get("Authorization"), s.api_audience, None)
    if not identity.subject:
        raise Unauthenticated("the token names no subject")
    return identity.subject


def _require_stats_access(services: Services, caller: str) -> None:
    """Who may see /stats and /stats/timeline: decided here, and only here.

    Today the rule is listing's: the router has already established the caller as it does for GET /jobs (with
    ONCETASK_API_REQUIRE_AUTH, a valid Google ID token, else 401; without, anyone), and whoever may list jobs may
    see the figures. They are system-wide (every owner's jobs and every queue, no payloads or IDs), so a deployment
    that serves several owners should restrict them to its operators: raise `Forbidden` (403) here for a caller
    who is not one."""
    return None


STATS_CACHE_HEADERS = {"Cache-Control": "private, max-age=5"}


def _stats(services: Services, request: flask.Request, caller: str, _: dict[str, str]) -> flask.Response:
    _require_stats_access(services, caller)
    body = Stats.model_validate(services.stats.overview())
    return json_response(200, body.model_dump(mode="json"), STATS_CACHE_HEADERS)


MAX_TIMELINE_MINUTES = 7 * 24 * 60
MAX_TIMELINE_BUCKETS = 60


def _timeline(services: Services, request: flask.Request, caller: str, _: dict[str, str]) -> flask.Response:
    _require_stats_access(services, caller)
    minutes = _int_arg(request, "minutes", 60, 1, MAX_TIMELINE_MINUTES)
    buckets = _int_arg(request, "buckets", 12, 1, MAX_TIMELINE_BUCKETS)
    body = Timeline.model_validate(services.stats.timeline(minutes, buckets))
    return json_response(200, body.model_dump(mode="json"), STATS_CACHE_HEADERS)


def _int_arg(request: flask.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(name, f"{name} must be an integer") from None
    if not low <= value <= high:
        raise InvalidRequest(name, f"{name} must be between {low} and {high}")
    return value


def _create(services: Services, request: flask.Request, owner: str, _: dict[str, str]) -> flask.Response:
    body = read_json(request, services.settings.max_body_bytes)
    try:
        parsed = CreateJobRequest.model_validate(body)
    except pydantic.ValidationError as exc:
        raise _invalid(exc) from exc
    submitted = services.commands.submit(
        owner, parsed.job_type, parsed.payload, parsed.idempotency_key, delay_seconds=parsed.delay_seconds,
        run_at=parsed.run_at, callback=parsed.callback.model_dump(exclude_none=True) if parsed.callback else None,
        lane=parsed.lane)
    response = CreateJobResponse(job_id=submitted.job_id, status=submitted.status,  # type: ignore[arg-type]
                                 task_name=submitted.task_name)
    return json_response(202, response.model_dump(mode="json"))


def _view(services: Services, job: Job) -> JobView:
    job_type = services.job_types.get(job.job_type)
    stages = [stage.name for stage in job_type.stages] if job_type else []
    return JobView.model_validate({**job.to_api(), "stages": stages})


def _get(services: Services, request: flask.Request, owner: str, params: dict[str, str]) -> flask.Response:
    job = services.commands.get(owner, params["job_id"])
    return json_response(200, _view(services, job).model_dump(mode="json"))


MAX_CHILDREN_LIMIT = 1000


def _children(services: Services, request: flask.Request, owner: str, params: dict[str, str]) -> flask.Response:
    """Each stage's children, in order: the ended ones with their outcome (one read each), the others by their ID
    only (children's IDs are derived from the parent; GET /jobs/{child} shows one)."""
    limit = _int_arg(request, "limit", 100, 1, MAX_CHILDREN_LIMIT)
    job = services.commands.get(owner, params["job_id"])
    stages = []
    for stage, checkpoint in job.checkpoints.items():
        join = checkpoint.get("children") or {}
        expected = int(join.get("count", 0))
        if not expected:
            continue
        outcomes = {int(o.get("index", -1)): o for o in services.store.children_outcomes(job.job_id, stage, limit)}
        listed = []
        for index in range(min(expected, limit)):
            outcome = outcomes.get(index)
            listed.append({"index": index, "job_id": child_id(job.job_id, job.incarnation, stage, index),
                           "state": outcome.get("state") if outcome else None,
                           "job_type": (outcome or {}).get("job_type") or join.get("job_type"),
                           "error": outcome.get("error") if outcome else None})
        stages.append({"stage": stage, "expected": expected, "ended": len(outcomes), "policy": join.get("policy"),
                       "children": listed})
    job_type = services.job_types.get(job.job_type)
    order = [stage.name for stage in job_type.stages] if job_type else []
    stages.sort(key=lambda s: (order.index(s["stage"]) if s["stage"] in order else len(order), s["stage"]))
    body = ChildrenView.model_validate({"job_id": job.job_id, "stages": stages})
    return json_response(200, body.model_dump(mode="json"))


def _list(services: Services, request: flask.Request, owner: str, _: dict[str, str]) -> flask.Response:
    args = request.args
    state: JobState | None = None
    if "state" in args:  # present but empty is a mistake to name, not "any state"
        try:
            state = JobState(args["state"])
        except ValueError:
            raise InvalidRequest("state", f"state must be one of {[s.value for s in JobState]}") from None
    try:
        limit = int(args.get("limit", "20"))
    except ValueError:
        raise InvalidRequest("limit", "limit must be an integer") from None
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest("limit", f"limit must be between 1 and {MAX_LIST_LIMIT}")
    cursor = args.get("cursor")
    if cursor is not None and not is_job_id(cursor):
        raise InvalidRequest("cursor", "cursor must be a value returned as next_cursor")
    job_type = args.get("job_type")
    if job_type is not None and job_type not in services.job_types:
        raise InvalidRequest("job_type", f"unknown job type {job_type!r}; known: {sorted(services.job_types)}")
    jobs = services.store.list_jobs(owner, state, limit, cursor, job_type)
    next_cursor = jobs[-1].job_id if len(jobs) == limit else None
    body = JobList(jobs=[_view(services, j) for j in jobs], next_cursor=next_cursor)
    return json_response(200, body.model_dump(mode="json"))


def _retry(services: Services, request: flask.Request, owner: str, params: dict[str, str]) -> flask.Response:
    submitted = services.commands.retry(owner, params["job_id"])
    return json_response(202, {"job_id": submitted.job_id, "status": submitted.status,
                               "task_name": submitted.task_name})


def _cancel(services: Services, request: flask.Request, owner: str, params: dict[str, str]) -> flask.Response:
    submitted = services.commands.cancel(owner, params["job_id"])
    return json_response(202, {"job_id": submitted.job_id, "status": submitted.status,
                               "task_name": submitted.task_name})


def _health(services: Services, request: flask.Request, owner: str, _: dict[str, str]) -> flask.Response:
    return json_response(200, {"status": "ok"})


def _openapi(services: Services, request: flask.Request, owner: str, _: dict[str, str]) -> flask.Response:
    return json_response(200, services.openapi)


@lru_cache(maxsize=1)
def _status_html() -> bytes:
    return resources.files("oncetask").joinpath("static/status.html").read_bytes()


def _status_page(services: Services, request: flask.Request, owner: str, _: dict[str, str]) -> flask.Response:
    """The status page: static HTML whose script calls this same API (so it sees what its caller may see)."""
    return flask.Response(_status_html(), status=200, mimetype="text/html",
                          headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


PUBLIC = frozenset({_health, _openapi, _status_page})  # no owner needed: they show no job

ROUTES: tuple[tuple[str, re.Pattern[str], Handler], ...] = (
    ("GET", re.compile(r"^/$"), _status_page),
    ("POST", re.compile(r"^/jobs$"), _create),
    ("GET", re.compile(r"^/jobs$"), _list),
    ("GET", re.compile(r"^/jobs/(?P<job_id>[^/]+)$"), _get),
    ("GET", re.compile(r"^/jobs/(?P<job_id>[^/]+)/children$"), _children),
    ("POST", re.compile(r"^/jobs/(?P<job_id>[^/]+)/retry$"), _retry),
    ("POST", re.compile(r"^/jobs/(?P<job_id>[^/]+)/cancel$"), _cancel),
    ("GET", re.compile(r"^/stats$"), _stats),
    ("GET", re.compile(r"^/stats/timeline$"), _timeline),
    ("GET", re.compile(r"^/healthz$"), _health),
    ("GET", re.compile(r"^/openapi\.json$"), _openapi),
)


def _route(method: str, path: str) -> tuple[Handler, dict[str, str]]:
    path = path.rstrip("/") or "/"
    allowed: list[str] = []
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match:
            if route_method == method:
                params = match.groupdict()
                if "job_id" in params and not is_job_id(params["job_id"]):
                    raise HttpError(404, "NOT_FOUND", f"no job {params['job_id']}")
                return handler, params
            allowed.append(route_method)
    if allowed:
        raise HttpError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here; use {' or '.join(allowed)}",
                        headers={"Allow": ", ".join(allowed)})
    raise HttpError(404, "NOT_FOUND", f"no such endpoint: {path}")


def _invalid(exc: pydantic.ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return InvalidRequest(where, f"{where}: {first['msg']}")

