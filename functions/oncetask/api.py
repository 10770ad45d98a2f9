"""The public HTTP API: parse the request, call the commands, map the result to HTTP. Nothing else.

Who the caller is comes from callers.py, before anything else is read: a job endpoint without an accepted identity
(or, where anonymous submissions are allowed, a capability) answers 401 and touches nothing."""

from __future__ import annotations

import re
from collections.abc import Callable

import flask
import pydantic

from . import statuspage
from .auth import Forbidden, Unauthenticated
from .callers import ANONYMOUS, Caller, CallerKind, caller_from, capability_owner, new_capability
from .children import child_id
from .errors import InvalidRequest, is_retryable
from .httputil import HttpError, error_response, json_response, read_json, to_response
from .job import Job
from .logs import bound, get_logger, new_trace_id, trace_id_from_headers, trace_resource
from .models import ChildrenView, CreateJobRequest, CreateJobResponse, JobList, JobView, Me, Stats, Timeline
from .naming import is_job_id
from .services import Services
from .states import JobState

__all__ = ["ANONYMOUS", "MAX_LIST_LIMIT", "handle"]

LOG = get_logger("api")
MAX_LIST_LIMIT = 100
NOBODY = Caller(CallerKind.ANONYMOUS, None)  # what the public endpoints (page, health, OpenAPI) are given

Handler = Callable[[Services, flask.Request, Caller, dict[str, str]], flask.Response]


def handle(services: Services, request: flask.Request) -> flask.Response:
    # The caller's trace (or a new one): a job submitted here keeps it, and its tasks and their logs carry it.
    trace_id = trace_id_from_headers(request.headers) or new_trace_id()
    with bound(trace=trace_resource(trace_id, services.settings.project_id)):  # this request only: threads are reused
        response = _handle(services, request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _handle(services: Services, request: flask.Request) -> flask.Response:
    try:
        handler, params = _route(request.method, request.path)
        if handler in PUBLIC:
            return handler(services, request, NOBODY, params)
        caller = caller_from(request.headers.get("Authorization"), services.settings, services.api_tokens)
        if "job_id" in params and not is_job_id(params["job_id"]):  # after the caller: 401 comes first
            raise HttpError(404, "NOT_FOUND", f"no job {params['job_id']}")
        return handler(services, request, caller, params)
    except Exception as exc:  # noqa: BLE001 - mapped to HTTP in one place
        response = to_response(exc)
        if response is not None:
            return response
        if is_retryable(exc):
            LOG.warning("transient failure", exc_info=exc)
            return error_response(503, "UNAVAILABLE", "a backend is temporarily unavailable; retry")
        LOG.exception("unexpected error")
        return error_response(500, "INTERNAL", "internal error")


def _acting_owner(caller: Caller) -> str:
    """Whose job the caller may act on: its own owner; an anonymous caller has none until it shows a capability."""
    if caller.owner is None:
        raise Unauthenticated("this job needs an ID token (`Authorization: Bearer <token>`) or its capability "
                              "(`Authorization: Capability <secret>`)")
    return caller.owner


def _require_stats_access(caller: Caller) -> None:
    """Who may see /stats and /stats/timeline: operators (and the local development caller, the only owner there
    is). The figures cover every owner's jobs and every queue, so an ordinary caller gets 403."""
    if not (caller.operator or caller.kind is CallerKind.DEVELOPMENT):
        raise Forbidden("the figures cover every owner's jobs: operators only (ONCETASK_OPERATORS, or the "
                        "oncetask_operator claim)")


# The figures depend on who asks (an operator gets them, anyone else a 403): a browser must not answer one signed-in
# user's request from the cache of another's.
STATS_CACHE_HEADERS = {"Cache-Control": "private, max-age=5", "Vary": "Authorization"}


def _stats(services: Services, request: flask.Request, caller: Caller, _: dict[str, str]) -> flask.Response:
    _require_stats_access(caller)
    body = Stats.model_validate(services.stats.overview())
    return json_response(200, body.model_dump(mode="json"), STATS_CACHE_HEADERS)


MAX_TIMELINE_MINUTES = 7 * 24 * 60
MAX_TIMELINE_BUCKETS = 60


def _timeline(services: Services, request: flask.Request, caller: Caller, _: dict[str, str]) -> flask.Response:
    _require_stats_access(caller)
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


def _create(services: Services, request: flask.Request, caller: Caller, _: dict[str, str]) -> flask.Response:
    body = read_json(request, services.settings.max_body_bytes)
    try:
        parsed = CreateJobRequest.model_validate(body)
    except pydantic.ValidationError as exc:
        raise _invalid(exc) from exc
    capability = caller.capability
    if caller.kind is CallerKind.ANONYMOUS:
        if parsed.idempotency_key is not None:
            # The key would be shared by every anonymous caller: one could claim (or probe) another's. Keys are
            # per capability: a caller who wants a keyed, safely retried submission chooses its capability.
            raise InvalidRequest("idempotency_key", "an anonymous submission takes an idempotency_key only with a "
                                                    "capability of its own: send `Authorization: Capability "
                                                    "<secret>` (32-128 URL-safe characters) with it")
        capability = new_capability()
    owner = capability_owner(capability) if capability else _acting_owner(caller)
    submitted = services.commands.submit(
        owner, parsed.job_type, parsed.payload, parsed.idempotency_key, delay_seconds=parsed.delay_seconds,
        run_at=parsed.run_at, callback=parsed.callback.model_dump(exclude_none=True) if parsed.callback else None,
        lane=parsed.lane)
    response = CreateJobResponse(job_id=submitted.job_id, status=submitted.status,  # type: ignore[arg-type]
                                 task_name=submitted.task_name, capability=capability)
    return json_response(202, response.model_dump(mode="json", exclude={"capability"} if capability is None else None))


def _view(services: Services, job: Job) -> JobView:
    job_type = services.job_types.get(job.job_type)
    stages = [stage.name for stage in job_type.stages] if job_type else []
    return JobView.model_validate({**job.to_api(), "stages": stages})


def _get(services: Services, request: flask.Request, caller: Caller, params: dict[str, str]) -> flask.Response:
    job = services.commands.get(_acting_owner(caller), params["job_id"], operator=caller.operator)
    return json_response(200, _view(services, job).model_dump(mode="json"))


MAX_CHILDREN_LIMIT = 1000


def _children(services: Services, request: flask.Request, caller: Caller, params: dict[str, str]) -> flask.Response:
    """Each stage's children, in order: the ended ones with their outcome (one read each), the others by their ID
    only (children's IDs are derived from the parent; GET /jobs/{child} shows one)."""
    limit = _int_arg(request, "limit", 100, 1, MAX_CHILDREN_LIMIT)
    job = services.commands.get(_acting_owner(caller), params["job_id"], operator=caller.operator)
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


def _list(services: Services, request: flask.Request, caller: Caller, _: dict[str, str]) -> flask.Response:
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
    if caller.operator:
        jobs = services.store.list_all_jobs(state, limit, cursor, job_type)
    elif caller.may_list and caller.owner is not None:
        jobs = services.store.list_jobs(caller.owner, state, limit, cursor, job_type)
    else:
        jobs = []  # no identity (an anonymous caller, a capability): nothing to list
    next_cursor = jobs[-1].job_id if len(jobs) == limit else None
    body = JobList(jobs=[_view(services, j) for j in jobs], next_cursor=next_cursor)
    return json_response(200, body.model_dump(mode="json"))


def _retry(services: Services, request: flask.Request, caller: Caller, params: dict[str, str]) -> flask.Response:
    submitted = services.commands.retry(_acting_owner(caller), params["job_id"], operator=caller.operator)
    return json_response(202, {"job_id": submitted.job_id, "status": submitted.status,
                               "task_name": submitted.task_name})


def _cancel(services: Services, request: flask.Request, caller: Caller, params: dict[str, str]) -> flask.Response:
    submitted = services.commands.cancel(_acting_owner(caller), params["job_id"], operator=caller.operator)
    return json_response(202, {"job_id": submitted.job_id, "status": submitted.status,
                               "task_name": submitted.task_name})


def _me(services: Services, request: flask.Request, caller: Caller, _: dict[str, str]) -> flask.Response:
    """Who the API takes the caller for: its owner, what kind of caller, and whether it is an operator."""
    if not caller.may_list:
        raise Unauthenticated("no identity: send `Authorization: Bearer <ID token>`")
    me = Me(owner=caller.owner or "", kind=caller.kind.value, email=caller.email,  # type: ignore[arg-type]
            operator=caller.operator)
    return json_response(200, me.model_dump(mode="json"))


def _health(services: Services, request: flask.Request, caller: Caller, _: dict[str, str]) -> flask.Response:
    return json_response(200, {"status": "ok"})


def _openapi(services: Services, request: flask.Request, caller: Caller, _: dict[str, str]) -> flask.Response:
    return json_response(200, services.openapi)


def _status_page(services: Services, request: flask.Request, caller: Caller, _: dict[str, str]) -> flask.Response:
    """The status page: static HTML whose scripts call this same API with the user's token (so it shows what its
    user may see)."""
    return _static(services, request, caller, {"name": statuspage.PAGE})


def _static(services: Services, request: flask.Request, caller: Caller, params: dict[str, str]) -> flask.Response:
    response = statuspage.static_response(services.settings, params["name"])
    if response is None:
        raise HttpError(404, "NOT_FOUND", f"no such file: {params['name']}")
    return response


def _page_config(services: Services, request: flask.Request, caller: Caller, _: dict[str, str]) -> flask.Response:
    return json_response(200, statuspage.page_config(services.settings), headers={"Cache-Control": "no-cache"})


# No identity needed: they show no job. (The page's files are under /assets/: functions-framework's Flask app keeps
# /static/ for its own static folder.)
PUBLIC = frozenset({_health, _openapi, _status_page, _static, _page_config})

ROUTES: tuple[tuple[str, re.Pattern[str], Handler], ...] = (
    ("GET", re.compile(r"^/$"), _status_page),
    ("GET", re.compile(r"^/assets/(?P<name>[A-Za-z0-9_-]+\.(?:js|css))$"), _static),
    ("GET", re.compile(r"^/status/config$"), _page_config),
    ("GET", re.compile(r"^/me$"), _me),
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
                return handler, match.groupdict()
            allowed.append(route_method)
    if allowed:
        raise HttpError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed here; use {' or '.join(allowed)}",
                        headers={"Allow": ", ".join(allowed)})
    raise HttpError(404, "NOT_FOUND", f"no such endpoint: {path}")


def _invalid(exc: pydantic.ValidationError) -> InvalidRequest:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return InvalidRequest(where, f"{where}: {first['msg']}")

