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
                 callback: Callback | None = None) -> None:
        self.name = name
        self.payload = payload
        self.retry = retry
        self.stage_timeout = stage_timeout
        self.description = description
        self.delivery = delivery
        self.callback = callback
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
                       self.description, self.delivery, self.callback.as_dict() if self.callback else None)

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

    def __init__(self, name: str = "oncetask", *, settings: Settings | None = None) -> None:
        self.name = name
        self._definitions: dict[str, JobDefinition] = {}
        self._settings = settings
        self._services: Any = None
        self._lock = threading.RLock()

    # Definitions --------------------------------------------------------------------------------------------

    def job(self, name: str, *, payload: type[pydantic.BaseModel], retry: Retry | None = None,
            stage_timeout: float | None = None, delivery: str = "single", callback: Callback | None = None,
            description: str = "") -> JobDefinition:
        """Declare a job type: its name (what callers submit), its payload model, and its options: `retry`,
        `stage_timeout` (seconds), `delivery` ("single": all stages in one delivery, the cheapest; "per_stage":
        each stage in its own, so a job may last hours while no stage outlasts the dispatch deadline), and a
        `callback` every job of this type makes when it ends (unless its submission names its own). Then add its
        stages with `@definition.stage`."""
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
        if name in self._definitions:
            raise DefinitionError(f"job type {name!r} is defined twice in app {self.name!r}")
        definition = JobDefinition(name, payload, retry, stage_timeout, description, delivery, callback)
        self._definitions[name] = definition
        return definition

    def include(self, *others: App) -> App:
        """Add the job types of other apps (e.g. one per module of your project) to this one."""
        for other in others:
            for name, definition in other._definitions.items():
                if name in self._definitions and self._definitions[name] is not definition:
                    raise DefinitionError(f"job type {name!r} is defined in app {self.name!r} and in app "
                                          f"{other.name!r}")
                self._definitions[name] = definition
        return self

    def job_types(self) -> dict[str, JobType]:
        """Every job type, finished and checked against the settings (`DefinitionError` naming the problem)."""
        job_types = {name: definition.job_type() for name, definition in self._definitions.items()}
        deadline = self.settings.dispatch_deadline_seconds
        _check_follow_ups(job_types)
        for job_type in job_types.values():
            if job_type.stage_timeout_seconds is not None and job_type.stage_timeout_seconds > deadline:
                raise DefinitionError(f"job type {job_type.name!r}: stage_timeout ({job_type.stage_timeout_seconds:g}"
                                      f" s) is longer than the dispatch deadline ({deadline:g} s): Cloud Tasks "
                                      "would give up on the delivery first")
        return job_types

    def manifest(self) -> dict[str, Any]:
        """What the infrastructure must create for this app, derived from the definitions (the single source the
        Terraform module and the local stack read, so code and infrastructure cannot drift apart): the queue with
        its retry and rate settings, and every job type with its stages and options. JSON-able."""
        s = self.settings
        job_types = self.job_types()
        return {
            "manifest_version": 1,
            "app": self.name,
            "queues": [{
                "name": s.queue,
                "max_attempts": s.max_attempts,
                "min_backoff_seconds": s.min_backoff_seconds,
                "max_backoff_seconds": s.max_backoff_seconds,
                "max_doublings": s.max_doublings,
                "max_retry_duration_seconds": s.max_retry_duration_seconds,
                "max_dispatches_per_second": s.max_dispatches_per_second,
                "max_concurrent_dispatches": s.max_concurrent_dispatches,
            }],
            "job_types": [{
                "name": job_type.name,
                "description": job_type.description,
                "stages": [stage.name for stage in job_type.stages],
                "stage_timeout_seconds": job_type.stage_timeout_seconds or s.effective_stage_timeout_seconds,
                "max_attempts": job_type.retry.max_attempts if job_type.retry else s.max_attempts,
                "queue": s.queue,
            } for job_type in sorted(job_types.values(), key=lambda t: t.name)],
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
                self._services = Services(settings, self.job_types())
            return self._services

    def entry_points(self) -> EntryPoints:
        """The API, the task handler and the cleanup, as functions-framework HTTP targets. Checks the definitions
        first, so a wrong one fails the deployment's start-up, not its first delivery."""
        import functions_framework  # noqa: PLC0415

        from . import api as public_api  # noqa: PLC0415
        from . import logs, shutdown, taskhandler  # noqa: PLC0415

        self.validate()
        logs.configure()
        shutdown.install()

        def api(request: flask.Request) -> flask.Response:
            return public_api.handle(self.services, request)

        def process_task(request: flask.Request) -> flask.Response:
            return taskhandler.process_task(self.services, request)

        def cleanup_stale_locks(request: flask.Request) -> flask.Response:
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
