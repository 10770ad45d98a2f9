"""The application object: your job types, declared with decorators, and the three entry points that serve them.

    app = oncetask.App()
    thumbnails = app.job("image.thumbnails", payload=Thumbnails, retry=oncetask.Retry(max_attempts=5))

    @thumbnails.stage
    def probe(ctx: oncetask.Context[Thumbnails]) -> dict: ...

    # main.py, deployed as Cloud Run functions:
    api, process_task, cleanup_stale_locks = app.entry_points()

A definition is checked as it is written (a payload that is not a pydantic model, a duplicate stage, a stage that
is not a plain function...) and once more when the app starts (a job type without stages), always with a message
naming the job type and the problem, never at the first delivery.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import flask
import pydantic

from .errors import DefinitionError
from .routing import (BUSY_ALLOWANCE, MAX_CONCURRENT_DISPATCHES, MAX_DISPATCHES_PER_SECOND, QueuePolicy, Route,
                      Router)
from .settings import Settings
from .stages import JobType, Stage, StageFunction

if TYPE_CHECKING:
    from .client import DirectClient

JOB_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
STAGE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Retry:
    """A job type's retry policy, as Cloud Tasks' retry config reads it: `max_attempts` runs of the job in all (-1:
    unlimited), the wait before a retry growing from `min_backoff` by doubling `max_doublings` times, then linearly,
    up to `max_backoff` seconds; Cloud Tasks stops retrying a task only when both `max_attempts` and
    `max_retry_duration` (seconds, 0: no limit) are spent."""

    max_attempts: int = 3
    min_backoff: float = 30.0
    max_backoff: float = 600.0
    max_doublings: int = 3
    max_retry_duration: float = 3600.0

    def __post_init__(self) -> None:
        if not (self.max_attempts == -1 or self.max_attempts >= 1):
            raise DefinitionError("Retry: max_attempts must be at least 1, or -1 for unlimited")
        if not (0 <= self.min_backoff <= self.max_backoff):
            raise DefinitionError("Retry: min_backoff must be between 0 and max_backoff")
        if self.max_doublings < 0 or self.max_retry_duration < 0:
            raise DefinitionError("Retry: max_doublings and max_retry_duration must not be negative")


def _check_rate(where: str, rate: float | None, concurrency: int | None) -> None:
    if rate is not None and not (isinstance(rate, (int, float)) and math.isfinite(rate)
                                 and 0 < rate <= MAX_DISPATCHES_PER_SECOND):
        raise DefinitionError(f"{where}: rate must be above 0 and at most {MAX_DISPATCHES_PER_SECOND:g} dispatches "
                              "per second (Cloud Tasks' limit for a queue of HTTP tasks)")
    if concurrency is not None and not (isinstance(concurrency, int) and 1 <= concurrency <= MAX_CONCURRENT_DISPATCHES):
        raise DefinitionError(f"{where}: concurrency must be 1 to {MAX_CONCURRENT_DISPATCHES} tasks in flight")


@dataclass(frozen=True)
class Lane:
    """A priority lane: its own Cloud Tasks queue(s), so a burst in one lane never delays another. `rate`
    (dispatches per second, at most 500 per queue) and `concurrency` (tasks in flight) apply per shard; `shards`
    spreads the lane over several queues, for more than one queue's ceiling; `retry` is its backoff (a job type's
    own `retry` attempts still count per job)."""

    name: str
    rate: float = 50.0
    concurrency: int = 50
    retry: Retry = Retry()
    shards: int = 1

    def __post_init__(self) -> None:
        where = f"lane {self.name!r}"
        if not isinstance(self.name, str) or not re.match(r"^[a-z][a-z0-9-]{0,39}$", self.name):
            raise DefinitionError(f"{where}: a lane's name is 1-40 lowercase letters, digits or '-'")
        _check_rate(where, self.rate, self.concurrency)
        if not isinstance(self.retry, Retry):
            raise DefinitionError(f"{where}: retry must be an oncetask.Retry")
        if not (isinstance(self.shards, int) and 1 <= self.shards <= 100):
            raise DefinitionError(f"{where}: shards must be 1 to 100")


DEFAULT_LANES = (Lane("interactive"), Lane("batch", rate=10.0, concurrency=10))


@dataclass(frozen=True)
class Schedule:
    """A recurring submission: a job of `job_type` with `payload`, at the times `cron` names (unix-cron, five
    fields, in `time_zone`), each run de-duplicated by its scheduled time (Cloud Scheduler may retry a call)."""

    name: str
    cron: str
    job_type: str
    payload: dict[str, Any]
    time_zone: str = "UTC"
    lane: str | None = None


@dataclass(frozen=True)
class Callback:
    """Where to tell that a job ended: an https `url` (called through Cloud Tasks, signed, with retries) or a
    `job_type` to start (its payload is a `JobEnded`), for the endings listed in `on`."""

    url: str | None = None
    job_type: str | None = None
    on: tuple[str, ...] = ("completed", "failed")

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("url", self.url), ("job_type", self.job_type), ("on", list(self.on))) if v}


DELIVERIES = ("single", "per_stage")


class JobDefinition:
    """One job type of an app, as returned by `App.job()`: decorate its stages with `@definition.stage`, in order."""

    def __init__(self, name: str, payload: type[pydantic.BaseModel], retry: Retry | None,
                 stage_timeout: float | None, description: str, delivery: str = "single",
                 callback: Callback | None = None, lane: str | None = None, rate: float | None = None,
                 concurrency: int | None = None) -> None:
        self.name = name
        self.payload = payload
        self.retry = retry
        self.stage_timeout = stage_timeout
        self.description = description
        self.delivery = delivery
        self.callback = callback
        self.lane = lane
        self.rate = rate
        self.concurrency = concurrency
        self._stages: list[Stage] = []

    @overload
    def stage(self, fn: StageFunction) -> StageFunction: ...

    @overload
    def stage(self, fn: None = None, *, name: str | None = None) -> Callable[[StageFunction], StageFunction]: ...

    def stage(self, fn: StageFunction | None = None, *, name: str | None = None) -> Any:
        """Add a stage (the function's name, or `name=`) after the ones declared before it. The function takes the
        stage's `Context` and returns a JSON-able dict (or None): its checkpoint, which later stages see."""

        def add(function: StageFunction) -> StageFunction:
            self._add(function, name)
            return function

        return add(fn) if fn is not None else add

    def _add(self, function: Any, name: str | None) -> None:
        where = f"job type {self.name!r}"
        if not callable(function):
            raise DefinitionError(f"{where}: a stage must be a function, not {type(function).__name__}")
        if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
            raise DefinitionError(f"{where}: stage {getattr(function, '__name__', function)!r} is async; stages "
                                  "are plain functions (a stage runs in its own worker thread)")
        stage_name = name or getattr(function, "__name__", "")
        if not STAGE_NAME.match(stage_name or ""):
            raise DefinitionError(f"{where}: stage name {stage_name!r} must be 1-100 letters, digits, '_', '.' or "
                                  "'-' (no '/')")
        if stage_name in {s.name for s in self._stages}:
            raise DefinitionError(f"{where}: two stages are named {stage_name!r}")
        self._stages.append(Stage(stage_name, function))

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._stages)

    def job_type(self) -> JobType:
        """The finished definition; `DefinitionError` if it has no stage."""
        if not self._stages:
            raise DefinitionError(f"job type {self.name!r} has no stages: decorate at least one function with "
                                  f"@{_identifier(self.name)}.stage")
        return JobType(self.name, self.payload, tuple(self._stages), self.stage_timeout, self.retry,
                       self.description, self.delivery, self.callback.as_dict() if self.callback else None,
                       self.lane)

    def __repr__(self) -> str:
        return f"<JobDefinition {self.name!r} stages={list(self.stage_names)}>"


@dataclass(frozen=True)
class EntryPoints:
    """The three functions-framework targets of an app; unpack them in your `main.py`."""

    api: Callable[[flask.Request], flask.Response]
    process_task: Callable[[flask.Request], flask.Response]
    cleanup_stale_locks: Callable[[flask.Request], flask.Response]

    def __iter__(self) -> Iterator[Callable[[flask.Request], flask.Response]]:
        return iter((self.api, self.process_task, self.cleanup_stale_locks))


class App:
    """Your job types and the settings they run with (read from ONCETASK_* variables unless you pass them)."""

    def __init__(self, name: str = "oncetask", *, settings: Settings | None = None,
                 lanes: tuple[Lane, ...] = DEFAULT_LANES, default_lane: str | None = None) -> None:
        self.name = name
        if not lanes or not all(isinstance(lane, Lane) for lane in lanes):
            raise DefinitionError(f"app {name!r}: lanes must be one or more oncetask.Lane")
        if len({lane.name for lane in lanes}) != len(lanes):
            raise DefinitionError(f"app {name!r}: two lanes have the same name")
        self.lanes = {lane.name: lane for lane in lanes}
        self.default_lane = default_lane or lanes[0].name
        if self.default_lane not in self.lanes:
            raise DefinitionError(f"app {name!r}: default lane {self.default_lane!r} is not one of {list(self.lanes)}")
        self._definitions: dict[str, JobDefinition] = {}
        self._schedules: dict[str, Schedule] = {}
        self._settings = settings
        self._services: Any = None
        self._lock = threading.RLock()

    # Definitions --------------------------------------------------------------------------------------------

    def job(self, name: str, *, payload: type[pydantic.BaseModel], retry: Retry | None = None,
            stage_timeout: float | None = None, delivery: str = "single", callback: Callback | None = None,
            lane: str | None = None, rate: float | None = None, concurrency: int | None = None,
            description: str = "") -> JobDefinition:
        """Declare a job type: its name (what callers submit), its payload model, and its options: `retry`,
        `stage_timeout` (seconds), `delivery` ("single": all stages in one delivery, the cheapest; "per_stage":
        each stage in its own, so a job may last hours while no stage outlasts the dispatch deadline), and a
        `callback` every job of this type makes when it ends (unless its submission names its own), its `lane`,
        and a `rate` or `concurrency` of its own (with a `retry` backoff other than its lane's, this gives the job
        type queues of its own). Then add its stages with `@definition.stage`."""
        if not isinstance(name, str) or not JOB_TYPE_NAME.match(name):
            raise DefinitionError(f"job type name {name!r} must be 1-100 letters, digits, '_', '.' or '-', "
                                  "starting with a letter")
        if not (isinstance(payload, type) and issubclass(payload, pydantic.BaseModel)):
            raise DefinitionError(f"job type {name!r}: payload must be a pydantic model class (a subclass of "
                                  f"pydantic.BaseModel), not {payload!r}")
        if retry is not None and not isinstance(retry, Retry):
            raise DefinitionError(f"job type {name!r}: retry must be an oncetask.Retry, not {retry!r}")
        if stage_timeout is not None and not (isinstance(stage_timeout, (int, float)) and
                                              math.isfinite(stage_timeout) and stage_timeout > 0):
            raise DefinitionError(f"job type {name!r}: stage_timeout must be a positive number of seconds")
        if delivery not in DELIVERIES:
            raise DefinitionError(f"job type {name!r}: delivery must be one of {list(DELIVERIES)}, not {delivery!r}")
        if callback is not None and not (isinstance(callback, Callback) and callback.job_type and not callback.url):
            raise DefinitionError(f"job type {name!r}: callback must be an oncetask.Callback naming a job_type (URL "
                                  "callbacks are given per submission)")
        if lane is not None and lane not in self.lanes:
            raise DefinitionError(f"job type {name!r}: lane {lane!r} is not one of the app's {list(self.lanes)}")
        _check_rate(f"job type {name!r}", rate, concurrency)
        if name in self._definitions:
            raise DefinitionError(f"job type {name!r} is defined twice in app {self.name!r}")
        definition = JobDefinition(name, payload, retry, stage_timeout, description, delivery, callback, lane, rate,
                                   concurrency)
        self._definitions[name] = definition
        return definition

    def schedule(self, name: str, *, cron: str, job_type: str | JobDefinition, payload: dict[str, Any] | None = None,
                 time_zone: str = "UTC", lane: str | None = None) -> Schedule:
        """Submit a job of `job_type` at the times `cron` names (e.g. "0 3 * * *": every day at 03:00 in
        `time_zone`). The deployment creates one Cloud Scheduler job per schedule; each run's idempotency key is
        its scheduled time, so a retried call makes no second job."""
        if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9-]{0,62}$", name):
            raise DefinitionError(f"schedule name {name!r} must be 1-63 lowercase letters, digits or '-'")
        if name in self._schedules:
            raise DefinitionError(f"schedule {name!r} is defined twice in app {self.name!r}")
        type_name = getattr(job_type, "name", job_type)
        _check_cron(name, cron, time_zone)
        if lane is not None and lane not in self.lanes:
            raise DefinitionError(f"schedule {name!r}: lane {lane!r} is not one of the app's {list(self.lanes)}")
        schedule = Schedule(name, cron, type_name, dict(payload or {}), time_zone, lane)
        self._schedules[name] = schedule
        return schedule

    @property
    def schedules(self) -> dict[str, Schedule]:
        return dict(self._schedules)

    def include(self, *others: App) -> App:
        """Add the job types and schedules of other apps (e.g. one per module of your project) to this one, and
        the lanes it does not have (a lane it has keeps its own settings: lanes belong to the app you deploy)."""
        for other in others:
            for name, definition in other._definitions.items():
                if name in self._definitions and self._definitions[name] is not definition:
                    raise DefinitionError(f"job type {name!r} is defined in app {self.name!r} and in app "
                                          f"{other.name!r}")
                self._definitions[name] = definition
            for name, schedule in other._schedules.items():
                if name in self._schedules and self._schedules[name] != schedule:
                    raise DefinitionError(f"schedule {name!r} is defined in app {self.name!r} and in {other.name!r}")
                self._schedules[name] = schedule
            for lane in other.lanes.values():
                self.lanes.setdefault(lane.name, lane)
        return self

    def job_types(self) -> dict[str, JobType]:
        """Every job type, finished and checked against the settings (`DefinitionError` naming the problem)."""
        job_types = {name: definition.job_type() for name, definition in self._definitions.items()}
        deadline = self.settings.dispatch_deadline_seconds
        _check_follow_ups(job_types)
        for definition in self._definitions.values():
            if definition.lane is not None and definition.lane not in self.lanes:
                raise DefinitionError(f"job type {definition.name!r}: lane {definition.lane!r} is not one of the "
                                      f"app's {list(self.lanes)}")
        for schedule in self._schedules.values():
            if schedule.job_type not in job_types:
                raise DefinitionError(f"schedule {schedule.name!r} submits unknown job type {schedule.job_type!r}")
            try:
                job_types[schedule.job_type].validate(schedule.payload)
            except pydantic.ValidationError as exc:
                raise DefinitionError(f"schedule {schedule.name!r}: its payload does not fit job type "
                                      f"{schedule.job_type!r}: {exc.errors()[0]['msg']}") from None
        for job_type in job_types.values():
            if job_type.stage_timeout_seconds is not None and job_type.stage_timeout_seconds > deadline:
                raise DefinitionError(f"job type {job_type.name!r}: stage_timeout ({job_type.stage_timeout_seconds:g}"
                                      f" s) is longer than the dispatch deadline ({deadline:g} s): Cloud Tasks "
                                      "would give up on the delivery first")
        return job_types

    def router(self) -> Router:
        """Which queue each job goes to (lanes, job types' own policies, shards): see `routing.py`."""
        routes = {}
        for name, definition in self._definitions.items():
            lane = self.lanes[definition.lane or self.default_lane]
            retry = definition.retry
            own = definition.rate is not None or definition.concurrency is not None or (
                retry is not None and _backoff(retry) != _backoff(lane.retry))
            routes[name] = Route(lane.name, _policy(definition.rate or lane.rate,
                                                    definition.concurrency or lane.concurrency,
                                                    retry or lane.retry) if own else None)
        lanes = {lane.name: (_policy(lane.rate, lane.concurrency, lane.retry), lane.shards)
                 for lane in self.lanes.values()}
        return Router(self.settings.queue_prefix, lanes, routes, self.default_lane)

    def manifest(self) -> dict[str, Any]:
        """What the infrastructure must create for this app, derived from the definitions (the single source the
        Terraform module and the local stack read, so code and infrastructure cannot drift apart): every queue with
        its retry and rate settings, the callbacks' queue, every job type with its stages, options and lane, and
        the schedules. JSON-able."""
        s = self.settings
        job_types = self.job_types()
        router = self.router()

        def queue(name: str, policy: QueuePolicy, **extra: Any) -> dict[str, Any]:
            return {"name": name, "max_attempts": policy.max_attempts, "min_backoff_seconds": policy.min_backoff,
                    "max_backoff_seconds": policy.max_backoff, "max_doublings": policy.max_doublings,
                    "max_retry_duration_seconds": policy.max_retry_duration,
                    "max_dispatches_per_second": policy.rate, "max_concurrent_dispatches": policy.concurrency,
                    **extra}

        return {
            "manifest_version": 2,
            "app": self.name,
            "queues": [queue(spec.name, spec.policy, lane=spec.lane, job_type=spec.job_type, shard=spec.shard,
                             purpose="jobs") for spec in router.plan()]
                      + [queue(s.callback_queue, CALLBACK_POLICY, purpose="callbacks")],
            "lanes": [{"name": lane.name, "shards": lane.shards, "default": lane.name == self.default_lane}
                      for lane in self.lanes.values()],
            "job_types": [{
                "name": job_type.name,
                "description": job_type.description,
                "stages": [stage.name for stage in job_type.stages],
                "delivery": job_type.delivery,
                # As declared; None: the deployment's setting, read where the function runs (a value resolved
                # here would be the bundling machine's, and could differ from the deployment's).
                "stage_timeout_seconds": job_type.stage_timeout_seconds,
                "max_attempts": job_type.retry.max_attempts if job_type.retry else None,
                "lane": router.lane_of(job_type.name),
                "queues": router.queues_of(job_type.name),
            } for job_type in sorted(job_types.values(), key=lambda t: t.name)],
            "schedules": [{"name": sc.name, "cron": sc.cron, "time_zone": sc.time_zone, "job_type": sc.job_type,
                           "lane": sc.lane} for sc in sorted(self._schedules.values(), key=lambda x: x.name)],
        }

    def validate(self) -> App:
        """Check every definition now (the entry points do it when they are made)."""
        self.job_types()
        return self

    # Running ------------------------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        with self._lock:
            if self._settings is None:
                self._settings = Settings()
            return self._settings

    def configure(self, settings: Settings) -> App:
        """Run with these settings from now on (tests and local stacks; a deployment reads its environment)."""
        with self._lock:
            self._settings = settings
            self._services = None
        return self

    @property
    def services(self) -> Any:
        """The wiring (clients, stores, processor), built on first use and kept: a warm instance reuses it."""
        from .services import Services  # noqa: PLC0415 - keeps `import oncetask` light for definitions

        settings = self.settings
        with self._lock:
            if self._services is None or self._services.settings is not settings:
                self._services = Services(settings, self.job_types(), self.router(), self.schedules)
            return self._services

    def entry_points(self) -> EntryPoints:
        """The API, the task handler and the cleanup, as functions-framework HTTP targets. Checks the definitions
        first, so a wrong one fails the deployment's start-up, not its first delivery."""
        import functions_framework  # noqa: PLC0415

        from . import logs, shutdown  # noqa: PLC0415

        self.validate()
        logs.configure(service=self.settings.service_name, version=self.settings.service_version or None)
        shutdown.install()

        # Each function's own code is imported by its first request: an instance serving only the API never loads
        # the task handler's (and the other way round), so neither pays for the other's cold start.
        def api(request: flask.Request) -> flask.Response:
            from . import api as public_api  # noqa: PLC0415

            return public_api.handle(self.services, request)

        def process_task(request: flask.Request) -> flask.Response:
            from . import taskhandler  # noqa: PLC0415

            return taskhandler.process_task(self.services, request)

        def cleanup_stale_locks(request: flask.Request) -> flask.Response:
            from . import taskhandler  # noqa: PLC0415

            return taskhandler.cleanup_stale_locks(self.services, request)

        return EntryPoints(*(functions_framework.http(f) for f in (api, process_task, cleanup_stale_locks)))

    def client(self, *, owner: str | None = None) -> DirectClient:
        """A `DirectClient`: submit and follow this app's jobs straight into Firestore and Cloud Tasks."""
        from .client import DirectClient  # noqa: PLC0415 - client.py imports this module

        return DirectClient(self, owner=owner)

    def __repr__(self) -> str:
        return f"<App {self.name!r} job types={sorted(self._definitions)}>"


def load_app(reference: str) -> App:
    """The `App` named by `module:attribute` (or `module`, whose `app` attribute is used); a clear `LookupError`
    naming the module or attribute that could not be found."""
    module_name, _, attribute = reference.partition(":")
    attribute = attribute or "app"
    if not module_name:
        raise LookupError(f"{reference!r} names no module: expected module:attribute, e.g. myproject.jobs:app")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise LookupError(f"no module named {module_name!r} (is your project installed, or the current "
                              "directory the one that holds it?)") from exc
        raise
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise LookupError(f"module {module_name!r} has no attribute {attribute!r}")
        found = getattr(found, part)
    if not isinstance(found, App):
        raise LookupError(f"{module_name}:{attribute} is a {type(found).__name__}, not an oncetask.App")
    return found


def _backoff(retry: Retry) -> tuple[float, float, int, float]:
    return (retry.min_backoff, retry.max_backoff, retry.max_doublings, retry.max_retry_duration)


def _policy(rate: float, concurrency: int, retry: Retry) -> QueuePolicy:
    attempts = -1 if retry.max_attempts == -1 else retry.max_attempts + BUSY_ALLOWANCE
    return QueuePolicy(rate, concurrency, retry.min_backoff, retry.max_backoff, retry.max_doublings,
                       retry.max_retry_duration, attempts)


# Callbacks are retried for a day: a receiver that is down for hours still gets its call.
CALLBACK_POLICY = QueuePolicy(rate=50.0, concurrency=50, min_backoff=10.0, max_backoff=3600.0, max_doublings=8,
                              max_retry_duration=86400.0, max_attempts=100)


def _check_cron(name: str, cron: str, time_zone: str) -> None:
    """A unix-cron expression of five fields and a time zone Cloud Scheduler knows (the IANA database)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # noqa: PLC0415

    from croniter import croniter  # noqa: PLC0415 - only apps with schedules need it

    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise DefinitionError(f"schedule {name!r}: {cron!r} is not a unix-cron expression of five fields "
                              "(minute hour day-of-month month day-of-week)")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DefinitionError(f"schedule {name!r}: unknown time zone {time_zone!r}") from None


def _check_follow_ups(job_types: dict[str, JobType]) -> None:
    """Each job type's callback names a job type of the app that can follow it, and no chain of them comes back
    to where it started (jobs that would start each other forever)."""
    from .callbacks import check_follow_up_model  # noqa: PLC0415
    from .errors import InvalidRequest  # noqa: PLC0415

    follows = {name: (t.callback or {}).get("job_type") for name, t in job_types.items()}
    for name, target in follows.items():
        if target is None:
            continue
        if target not in job_types:
            raise DefinitionError(f"job type {name!r}: its callback starts unknown job type {target!r}")
        try:
            check_follow_up_model(job_types[target])
        except InvalidRequest as exc:
            raise DefinitionError(f"job type {name!r}: {exc.message}") from None
        seen, current = [name], target
        while current is not None:
            if current in seen:
                raise DefinitionError(f"job types start each other in a cycle: {' -> '.join([*seen, current])}")
            seen.append(current)
            current = follows.get(current)


def _identifier(name: str) -> str:
    return re.sub(r"\W", "_", name.split(".")[-1]) or "job"
