"""oncetask: background jobs on Cloud Tasks and Firestore, enqueued once, run once, never stuck.

Define job types in your own package, serve them from your `main.py`, test them against local emulators:

    import oncetask
    from pydantic import BaseModel

    app = oncetask.App()

    class Greeting(BaseModel):
        name: str

    greet = app.job("demo.greet", payload=Greeting, retry=oncetask.Retry(max_attempts=5))

    @greet.stage
    def compose(ctx: oncetask.Context[Greeting]) -> dict:
        return {"card": ctx.artifacts.write("card.txt", f"Hello, {ctx.payload.name}!".encode())}

    @greet.stage
    def publish(ctx: oncetask.Context[Greeting]) -> dict:
        ctx.log.info("publishing %s", ctx.outputs["compose"]["card"])
        return {"published": True}

    # main.py
    api, process_task, cleanup_stale_locks = app.entry_points()

    # a backend: over the HTTP API with a Google ID token, or straight into Firestore and Cloud Tasks
    client = oncetask.Client("https://oncetask-api-xyz.a.run.app")  # or app.client()
    job = client.wait(client.submit(greet, Greeting(name="Ada"), key="greet-ada").job_id, timeout=60)

Everything a user may rely on is listed in `__all__`; other modules are internal and may change.
"""

from typing import TYPE_CHECKING, Any

from .app import App, Callback, EntryPoints, JobDefinition, Lane, Retry, Schedule, load_app
from .callbacks import JobEnded, verify_signature
from .children import ChildOutcome
from .errors import Cancelled, DefinitionError, LeaseLost, PermanentError, RetryableError, StageTimeout
from .settings import Settings
from .stages import Context, FencedBatch
from .states import JobState

__all__ = [
    "App",  # your job types and the three entry points that serve them
    "JobDefinition",  # one job type, returned by App.job(); add stages with @definition.stage
    "Retry",  # a job type's retry policy (attempts and backoff)
    "Lane",  # a priority lane: queue(s) of its own with its rate, concurrency, backoff and shards
    "Schedule",  # a recurring submission (App.schedule): cron, job type, payload
    "EntryPoints",  # api, process_task, cleanup_stale_locks: unpack them in main.py
    "load_app",  # the App named by "module:attribute"
    "Context",  # what a stage gets: payload, outputs, artifacts, batch(), check(), log, children, sleep, ...
    "ChildOutcome",  # how one child job ended, as ctx.children() tells a later stage
    "Callback",  # tell a URL, or start a job, when a job ends
    "JobEnded",  # the payload of a job a callback starts
    "verify_signature",  # check a callback's X-Oncetask-Signature on the receiving side
    "FencedBatch",  # writes to your own collections that commit only while the worker holds the job
    "Settings",  # the deployment's settings, read from ONCETASK_* environment variables
    "JobState",  # queued, running, retrying, completed, failed, cancelled
    "PermanentError",  # raise it from a stage: the job fails at once (bad input)
    "RetryableError",  # raise it from a stage: the job is retried with backoff
    "LeaseLost",  # raised by ctx.check(): this worker no longer holds the job; stop
    "Cancelled",  # raised by ctx.check(): the job was cancelled; stop
    "StageTimeout",  # raised by ctx.check(): the stage ran past its deadline
    "DefinitionError",  # a job definition that cannot work, found where it is written or when the app starts
    "Client",  # submit, get, list, wait, retry, cancel jobs over the HTTP API, with a Google ID token
    "DirectClient",  # the same methods, straight into Firestore and Cloud Tasks through an app (app.client())
    "Submission",  # what submit, retry and cancel answer: job_id, status, task_name
    "JobView",  # a job as the API and the clients show it: state, stages done, outputs, errors
    "JobList",  # one page of jobs and the cursor of the next
    "WaitTimeout",  # a TimeoutError from client.wait(): the job did not finish in time (.job as last seen)
    "ApiError",  # base of the clients' errors: status, code, message, field
    "InvalidRequestError",  # 400/413/422: unknown job type, a payload the model refuses, a body too large
    "UnauthenticatedError",  # 401: no token, or one the API refuses
    "PermissionDeniedError",  # 403: a known caller that may not call
    "NotFoundError",  # 404: no such job for this caller
    "ConflictError",  # 409: a key reused with another payload, a retry of a job that has not failed...
    "UnavailableError",  # 5xx, 429 or unreachable, after the clients' own retries
]

__version__ = "0.2.0"

# The clients, their errors and the API's views are loaded on first use: a deployed function (which imports this
# package at every cold start) needs none of them unless its own code calls another service.
_LAZY = {
    **dict.fromkeys(("Client", "DirectClient", "Submission", "WaitTimeout"), "client"),
    **dict.fromkeys(("ApiError", "ConflictError", "InvalidRequestError", "NotFoundError", "PermissionDeniedError",
                     "UnauthenticatedError", "UnavailableError"), "apierrors"),
    **dict.fromkeys(("JobList", "JobView"), "models"),
}

if TYPE_CHECKING:
    from .apierrors import (ApiError, ConflictError, InvalidRequestError, NotFoundError, PermissionDeniedError,
                            UnauthenticatedError, UnavailableError)
    from .client import Client, DirectClient, Submission, WaitTimeout
    from .models import JobList, JobView


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oncetask' has no attribute {name!r}")
    from importlib import import_module  # noqa: PLC0415

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
