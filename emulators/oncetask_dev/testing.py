"""Testing an oncetask app: the emulators, an in-process runner of its jobs, a stage-by-stage harness, and a
handle on a whole local stack. The pytest plugin (`oncetask_dev.pytest_plugin`) hands these out as fixtures; the
classes are importable for type hints and for scripts (benchmarks) that want them without pytest.

- `Emulators.start()`: the project's Firestore, Cloud Tasks and Storage emulators as child processes.
- `Runner(app, emulators)`: your app configured for a fresh project on those emulators. `submit()` does what
  `POST /jobs` does (validation, idempotency key, the job document and its named task, in a paused queue), and
  `run()` hands the job's task to the real processor in this process, delivery after delivery (a retryable
  failure is delivered again at once: backoffs and sleeps are skipped), until the job is completed, failed or
  cancelled; a job waiting for the child jobs it started gets them run first, the same way.
- `Runner.stages(job_type, payload)`: one stage at a time, without a lease, to unit-test what a stage does with
  its input, on a rerun, or when `ctx.check()` says the worker must stop.
- `StackHandle`: a running `LocalStack` (the functions served over HTTP, Cloud Tasks dispatching with OIDC).

Nothing here is deployed; it may use oncetask's internals so that your tests need only its public API.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pydantic
from google.api_core import exceptions as gexc
from google.cloud import firestore, storage

import oncetask
from oncetask import JobState
from oncetask.api import ANONYMOUS
from oncetask.api import _invalid as invalid_request
from oncetask.artifacts import RunArtifacts, job_prefix, split_uri
from oncetask.children import child_ids
from oncetask.httputil import to_response
from oncetask.job import FAILED_TASKS, RESULTS, Job
from oncetask.jobstore import Write
from oncetask.models import CreateJobRequest
from oncetask.processor import TaskDelivery, idempotency_key, job_logger
from oncetask.stages import Context, JobType, StageOutput
from oncetask.states import TERMINAL
from oncetask_emulators.process import ChildProcess, launch, python_module

from .provision import create_queues, job_queues

__all__ = [
    "Emulator", "Emulators", "Runner", "Submission", "Delivery", "JobSnapshot", "StageRunner", "StackHandle",
    "RunnerRefused", "RunLimitReached", "new_project_id",
]

LOG = logging.getLogger("oncetask_dev.testing")
NAMES = ("firestore", "tasks", "storage")
DEFAULT_MAX_DELIVERIES = 20
BUSY_PAUSE = 0.05  # seconds between deliveries while another lease holder keeps the job


def new_project_id() -> str:
    """A fresh Firestore project (and queue namespace) of one test: nothing one test writes is seen by another."""
    return f"test-{uuid.uuid4().hex[:12]}"


# The emulators ---------------------------------------------------------------------------------------------------

@dataclass
class Emulator:
    """One emulator child process. `host` is what its standard variable takes (FIRESTORE_EMULATOR_HOST=h:p,
    CLOUD_TASKS_EMULATOR_HOST=h:p, STORAGE_EMULATOR_HOST=http://h:p); `http` its HTTP side (stats, JWKS)."""

    name: str
    host: str
    http: str
    process: ChildProcess

    @property
    def variable(self) -> str:
        return {"firestore": "FIRESTORE_EMULATOR_HOST", "tasks": "CLOUD_TASKS_EMULATOR_HOST",
                "storage": "STORAGE_EMULATOR_HOST"}[self.name]

    def stop(self) -> None:
        self.process.stop()


def start_emulator(name: str, time_scale: float = 0.01) -> Emulator:
    """Start one of the project's emulators on free ports (in memory) and wait until it serves."""
    if name == "firestore":
        child = launch(python_module("oncetask_emulators.firestore", "--host", "127.0.0.1", "--port", "0",
                                     "--http-port", "0"), name="firestore")
        return Emulator(name, child.endpoints["grpc"], child.endpoints["http"], child)
    if name == "tasks":
        child = launch(python_module("oncetask_emulators.tasks", "--host", "127.0.0.1", "--port", "0",
                                     "--http-port", "0", "--time-scale", str(time_scale)), name="tasks")
        return Emulator(name, child.endpoints["grpc"], child.endpoints["http"], child)
    if name == "storage":
        child = launch(python_module("oncetask_emulators.storage", "--host", "127.0.0.1", "--port", "0"),
                       name="storage")
        return Emulator(name, f"http://{child.endpoints['http']}", child.endpoints["http"], child)
    raise ValueError(f"no emulator {name!r}; they are {list(NAMES)}")


@dataclass
class Emulators:
    """Firestore, Cloud Tasks and Storage emulators, as the runner needs them."""

    firestore: Emulator
    tasks: Emulator
    storage: Emulator

    @classmethod
    def start(cls) -> Emulators:
        """Start the three at once (about a second); if one fails, the others are stopped again."""
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = [pool.submit(start_emulator, name) for name in NAMES]
        started = [f.result() for f in futures if f.exception() is None]
        failed = [f.exception() for f in futures if f.exception() is not None]
        if failed:
            for emulator in started:
                emulator.stop()
            raise failed[0]  # type: ignore[misc]
        return cls(*started)

    def stop(self) -> None:
        for emulator in (self.firestore, self.tasks, self.storage):
            emulator.stop()

    @property
    def env(self) -> dict[str, str]:
        """The standard variables pointing Google's client libraries at these emulators."""
        return {e.variable: e.host for e in (self.firestore, self.tasks, self.storage)}

    def settings(self, base: oncetask.Settings | None = None, **overrides: Any) -> oncetask.Settings:
        """`base` (or the defaults), pointed at these emulators, with `overrides` (Settings field names)."""
        values = {"firestore_emulator_host": self.firestore.host, "cloud_tasks_emulator_host": self.tasks.host,
                  "storage_emulator_host": self.storage.host, **overrides}
        return settings_with(base or oncetask.Settings(), **values)


def settings_with(base: oncetask.Settings, **changes: Any) -> oncetask.Settings:
    """`base` with some fields changed (by field name), validated again as a whole, so a change that breaks a rule
    (a stage timeout above the dispatch deadline) is refused here, naming it, as a deployment would refuse it.
    Nothing is read from the environment: the test's settings are exactly these."""
    model = type(base)
    unknown = sorted(set(changes) - set(model.model_fields))
    if unknown:
        raise TypeError(f"unknown settings {unknown}; see oncetask.Settings for their names")
    values = {**base.model_dump(), **changes}
    data = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias  # a field read by its variable's name (FIRESTORE_EMULATOR_HOST, ...)
        key = alias.choices[0] if hasattr(alias, "choices") else (alias if isinstance(alias, str) else name)
        data[key] = values[name]
    return model.model_validate(data)


# What the runner hands back ---------------------------------------------------------------------------------------

class RunnerRefused(Exception):
    """The API would have refused this request: its HTTP status and `{"error": {code, message, field}}`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}" + (f" (field {field})" if field else ""))
        self.status, self.code, self.message, self.field = status, code, message, field


class RunLimitReached(AssertionError):
    """`Runner.run()` gave up before the job was completed, failed or cancelled."""


@dataclass(frozen=True)
class Submission:
    """What `POST /jobs` answers: the job's ID, `queued` or `already_<state>`, and its task's name."""

    job_id: str
    status: str
    task_name: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One delivery of a job's task to the processor, and what the handler answered Cloud Tasks."""

    status: int  # 2xx: the task is done; 424: retry it later; 409: someone else holds the job
    outcome: str  # completed, retrying, failed, cancelled, already_completed, busy, ...
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobSnapshot:
    """A job as stored now: what `GET /jobs/{id}` shows, plus the checkpoints (with the artifacts each lists)."""

    job_id: str
    job_type: str
    state: JobState
    payload: dict[str, Any]
    attempts: int
    generation: int
    current_stage: str | None
    cancel_requested: bool
    checkpoints: dict[str, dict[str, Any]]
    errors: list[dict[str, Any]]
    idempotency_key: str | None
    deliveries: tuple[Delivery, ...] = ()  # those of the `run()` that returned this snapshot

    @classmethod
    def of(cls, job: Job, deliveries: tuple[Delivery, ...] = ()) -> JobSnapshot:
        return cls(job.job_id, job.job_type, job.state, job.payload, job.attempts, job.generation, job.current_stage,
                   job.cancel_requested, job.checkpoints, job.errors, job.idempotency_key, deliveries)

    @property
    def outputs(self) -> dict[str, StageOutput]:
        """Each checkpointed stage's output, by stage name (what later stages saw as `ctx.outputs`)."""
        return {name: checkpoint.get("output") or {} for name, checkpoint in self.checkpoints.items()}

    @property
    def completed_stages(self) -> list[str]:
        return sorted(self.checkpoints)

    @property
    def error(self) -> dict[str, Any] | None:
        """The last error recorded (code, message, stage, retryable, attempt), if any."""
        return self.errors[-1] if self.errors else None

    @property
    def artifacts(self) -> list[str]:
        """The gs:// URIs of the objects the checkpointed stages wrote (through `ctx.artifacts.write`)."""
        return sorted(uri for checkpoint in self.checkpoints.values() for uri in checkpoint.get("artifacts") or ())


def _job_id(job: str | Submission) -> str:
    return job.job_id if isinstance(job, Submission) else job


# The runner ---------------------------------------------------------------------------------------------------------

class Runner:
    """Your app on the emulators, in this process, for one test: a fresh Firestore project, a paused queue (no
    task is ever dispatched over HTTP: `run()` hands it to the processor instead) and a fresh artifacts bucket.

        job = runner.submit("image.thumbnails", {"source": runner.upload("in/cat.png", data)}, key="cat")
        done = runner.run(job)
        assert done.state is oncetask.JobState.COMPLETED and runner.read(done.outputs["manifest"]["manifest"])
    """

    def __init__(self, app: oncetask.App, emulators: Emulators, *, project_id: str | None = None,
                 owner: str = ANONYMOUS, **settings: Any) -> None:
        self.owner = owner  # the API's caller when authentication is off; jobs are visible to their owner only
        changes = {"project_id": project_id or new_project_id(), "bucket": f"artifacts-{uuid.uuid4().hex[:12]}",
                   "task_handler_url": "http://127.0.0.1:9/never-dispatched", **settings}
        # Your app is left as it is (its settings not even read into it): the runner serves a copy of its job
        # types, with the settings it was given, or those its deployment would read, changed for this test.
        base = getattr(app, "_settings", None) or oncetask.Settings()
        self.settings = emulators.settings(base, **changes)
        self.project_id = self.settings.project_id
        self.app = oncetask.App(app.name, lanes=tuple(app.lanes.values()), default_lane=app.default_lane).include(
            app).configure(self.settings)
        self.emulators = emulators
        self._deliveries: dict[tuple[str, int], int] = {}
        self.app.validate()  # a wrong definition: DefinitionError naming the job type, before anything is made
        services = self.app.services
        client = services.queue.client
        create_queues(client, self.settings, self.app.manifest())
        for queue in job_queues(self.settings, self.app.manifest()):
            client.pause_queue(name=queue)
        services.bucket.client.create_bucket(self.settings.bucket)

    def close(self) -> None:
        self.app.services.close()

    # Submitting -----------------------------------------------------------------------------------------------

    def submit(self, job_type: str, payload: Mapping[str, Any] | pydantic.BaseModel | None = None, *,
               key: str | None = None) -> Submission:
        """Submit a job exactly as `POST /jobs` does: the payload checked by the job type's model, one job per
        idempotency key (the same key and payload: the same job; another payload: 409), its named task created
        in the (paused) queue. A refusal raises `RunnerRefused` with the API's status, code, message and field."""
        if isinstance(payload, pydantic.BaseModel):
            payload = payload.model_dump(mode="json")
        body = {"job_type": job_type, "payload": {} if payload is None else payload, "idempotency_key": key}

        def submit() -> Any:
            try:  # the request's own shape first, as the API checks it (a key too long, a payload not an object)
                request = CreateJobRequest.model_validate(body)
            except pydantic.ValidationError as exc:
                raise invalid_request(exc) from exc
            return self.app.services.commands.submit(self.owner, request.job_type, request.payload,
                                                     request.idempotency_key)

        submitted = self._call(submit)
        return Submission(submitted.job_id, submitted.status, submitted.task_name)

    def retry(self, job: str | Submission) -> Submission:
        """`POST /jobs/{id}/retry`: a failed job queued again under a new generation, resuming at its failed stage."""
        submitted = self._call(self.app.services.commands.retry, self.owner, _job_id(job))
        return Submission(submitted.job_id, submitted.status, submitted.task_name)

    def cancel(self, job: str | Submission) -> Submission:
        """`POST /jobs/{id}/cancel`: a waiting job is cancelled at once, a running one at its next check."""
        submitted = self._call(self.app.services.commands.cancel, self.owner, _job_id(job))
        return Submission(submitted.job_id, submitted.status, submitted.task_name)

    @staticmethod
    def _call(command: Callable[..., Any], *args: Any) -> Any:
        try:
            return command(*args)
        except Exception as exc:  # noqa: BLE001 - mapped as the API maps it, or re-raised
            response = to_response(exc)
            if response is None or response.status_code >= 500:
                raise
            error = response.get_json()["error"]
            raise RunnerRefused(response.status_code, error["code"], error["message"], error.get("field")) from exc

    # Running --------------------------------------------------------------------------------------------------

    def deliver(self, job: str | Submission) -> Delivery:
        """One delivery of the job's current task to the real processor, as Cloud Tasks would make it (its
        X-CloudTasks-TaskRetryCount counting this generation's deliveries). A 2xx answer ends the task, as in
        Cloud Tasks: it is deleted from the queue."""
        return self._deliver(self._load(_job_id(job)))

    def _deliver(self, current: Job) -> Delivery:
        counted = (current.job_id, current.generation)
        retries = self._deliveries.get(counted, 0)
        outcome = self.app.services.processor.handle(TaskDelivery(
            current.job_id, current.generation, task_name=current.task_name or "", retry_count=retries,
            execution_count=retries))
        self._deliveries[counted] = retries + 1
        if 200 <= outcome.status < 300 and current.task_name:
            try:
                self.app.services.queue.client.delete_task(name=current.task_name)
            except gexc.NotFound:
                pass  # a job created by hand, or a task already gone
        return Delivery(outcome.status, outcome.outcome, dict(outcome.detail))

    def run(self, job: str | Submission, *, max_deliveries: int = DEFAULT_MAX_DELIVERIES,
            timeout: float = 60.0) -> JobSnapshot:
        """Deliver the job's task to the processor again and again, at once (no backoff), until the job is
        completed, failed or cancelled; returns it then, with the deliveries made. While another live lease holds
        the job, deliveries are answered `busy` and repeated until it lapses (they do not count as deliveries that
        ran). `RunLimitReached` if it is still not finished after `max_deliveries` deliveries that ran, or after
        `timeout` seconds, naming its state, last outcome and last error.

        A job that waits for the child jobs one of its stages started has those children run first (each with
        these limits), in order, then its wake-up delivered; the deliveries returned are the job's own."""
        job_id = _job_id(job)
        deliveries: list[Delivery] = []
        deadline = time.monotonic() + timeout
        current = self._load(job_id)
        while current.state not in TERMINAL:
            if current.state is JobState.WAITING:
                self._run_children(current, max_deliveries, deadline)
            ran = sum(1 for d in deliveries if d.outcome != "busy")
            if ran >= max_deliveries or time.monotonic() > deadline:
                raise RunLimitReached(self._unfinished(current, deliveries,
                                                       f"{ran} deliveries" if ran >= max_deliveries else
                                                       f"{timeout:g} s"))
            delivery = self._deliver(current)
            deliveries.append(delivery)
            if delivery.outcome == "busy":
                time.sleep(BUSY_PAUSE)  # another lease holder: its lease must lapse before this delivery can run
            current = self._load(job_id)
        return JobSnapshot.of(current, tuple(deliveries))

    def _run_children(self, parent: Job, max_deliveries: int, deadline: float) -> None:
        """Run the waiting job's unfinished children, in order, until one of them wakes it (the last one's ending,
        or a failed one under `on_failure="fail"`, enqueues the job's wake-up task, delivered next)."""
        fail_fast = (parent.waiting or {}).get("policy") == "fail"
        for child in child_ids(parent):
            state = self._load(child).state
            if state not in TERMINAL:
                state = self.run(child, max_deliveries=max_deliveries,
                                 timeout=max(deadline - time.monotonic(), 0.0)).state
            if (fail_fast and state is not JobState.COMPLETED) or self._load(parent.job_id).state is not JobState.WAITING:
                return

    def _unfinished(self, job: Job, deliveries: list[Delivery], spent: str) -> str:
        last = deliveries[-1].outcome if deliveries else None
        message = (f"job {job.job_id} ({job.job_type}) is still {job.state.value} after {spent}; last outcome "
                   f"{last!r}, last error {job.errors[-1] if job.errors else None}")
        if last == "busy":
            message += (f"; a lease holds it until it lapses ({self.settings.lease_ttl_seconds:g} s after its last "
                        "renewal): lower lease_ttl_seconds with @pytest.mark.oncetask_settings, or raise `timeout`")
        return message

    def cleanup(self) -> dict[str, int]:
        """One run of the scheduled cleanup (lapsed leases, lost tasks, retention) on this test's project."""
        services = self.app.services
        return services.cleanup.run().to_dict()

    # Looking -------------------------------------------------------------------------------------------------

    def _load(self, job_id: str) -> Job:
        job = self.app.services.store.get(job_id)
        if job is None:
            raise LookupError(f"no job {job_id!r} in this test's project ({self.project_id})")
        return job

    def job(self, job: str | Submission) -> JobSnapshot:
        """The job as stored now (`LookupError` if there is none)."""
        return JobSnapshot.of(self._load(_job_id(job)))

    def result(self, job: str | Submission) -> dict[str, StageOutput] | None:
        """The completed job's result record: every stage's output, by stage name; None until it completes."""
        record = self.app.services.store.get_doc(RESULTS, _job_id(job))
        return None if record is None else record["outputs"]

    def dead_letter(self, job: str | Submission) -> dict[str, Any] | None:
        """The failed job's dead letter (`failed_tasks/{id}`: payload, errors, last_error); None if it did not fail."""
        return self.app.services.store.get_doc(FAILED_TASKS, _job_id(job))

    def objects(self, job: str | Submission) -> list[str]:
        """gs:// URIs of every object under the job's prefix, whichever run wrote it."""
        bucket = self.app.services.bucket
        return sorted(f"gs://{bucket.name}/{b.name}"
                      for b in bucket.client.list_blobs(bucket, prefix=job_prefix(_job_id(job))))

    @property
    def firestore(self) -> firestore.Client:
        """A client of this test's Firestore project (your collections, and oncetask's)."""
        return self.app.services.firestore

    @property
    def bucket(self) -> storage.Bucket:
        """The artifacts bucket of this test."""
        return self.app.services.bucket

    def documents(self, collection: str) -> dict[str, dict[str, Any]]:
        """Every document of one of your collections: {document ID: data}."""
        return {doc.id: doc.to_dict() or {} for doc in self.firestore.collection(collection).stream()}

    # Files --------------------------------------------------------------------------------------------------

    def upload(self, name: str, data: bytes, content_type: str | None = None, bucket: str | None = None) -> str:
        """Put an input file in the Storage emulator (the artifacts bucket, or `bucket`, made if missing); its
        gs:// URI, to put in a payload."""
        target = self._bucket(bucket)
        target.blob(name).upload_from_string(data, content_type=content_type or "application/octet-stream")
        return f"gs://{target.name}/{name}"

    def blob(self, uri: str) -> storage.Blob:
        """The object at `uri` with its metadata (content type, size, md5, generation); FileNotFoundError if none."""
        bucket, name = split_uri(uri)
        blob = self._bucket(bucket, create=False).get_blob(name)
        if blob is None:
            raise FileNotFoundError(f"no object at {uri}")
        return blob

    def read(self, uri: str) -> bytes:
        """The bytes of the object at `uri` (an artifact, an input); FileNotFoundError if none."""
        return self.blob(uri).download_as_bytes()

    def _bucket(self, name: str | None, create: bool = True) -> storage.Bucket:
        if name is None or name == self.bucket.name:
            return self.bucket
        bucket = self.bucket.client.bucket(name)
        if create and not bucket.exists():
            bucket = self.bucket.client.create_bucket(name)
        return bucket

    # Stage by stage ------------------------------------------------------------------------------------------

    def stages(self, job_type: str, payload: Mapping[str, Any] | pydantic.BaseModel, *,
               job_id: str | None = None) -> StageRunner:
        """Run one job's stages yourself, one at a time (see `StageRunner`); the payload is checked as submit()
        checks it (`RunnerRefused`)."""
        kind = self.app.job_types().get(job_type)
        if kind is None:
            raise RunnerRefused(422, "INVALID_ARGUMENT",
                                f"unknown job type {job_type!r}; known: {sorted(self.app.job_types())}", "job_type")
        if isinstance(payload, pydantic.BaseModel):
            payload = payload.model_dump(mode="json")
        try:
            model = kind.validate(dict(payload))
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in ("payload", *first["loc"]))
            raise RunnerRefused(422, "INVALID_ARGUMENT", f"{where}: {first['msg']}", where) from exc
        return StageRunner(self, kind, model, job_id or uuid.uuid4().hex)

    def __repr__(self) -> str:
        return f"<Runner project={self.project_id} job types={sorted(self.app.job_types())}>"


class StageRunner:
    """One job's stages run by hand, in order or one by one, each seeing the outputs of the stages before it, its
    artifacts written under the run's own prefix as the processor names them (`jobs/{id}/{stage}/{run}/`). No
    lease: `ctx.check()` calls the `check` you pass (raise `oncetask.LeaseLost` or `oncetask.Cancelled` from it to
    see what your stage does when it must stop), and `ctx.batch()` commits without a fence."""

    def __init__(self, runner: Runner, job_type: JobType, payload: pydantic.BaseModel, job_id: str) -> None:
        self.runner = runner
        self.job_type = job_type
        self.payload = payload
        self.job_id = job_id
        self.outputs: dict[str, StageOutput] = {}

    def _artifacts(self, stage: str, attempt: int, check: Callable[[], None]) -> RunArtifacts:
        return RunArtifacts(self.runner.bucket, self.job_id, stage, f"{attempt}-0a0a0a0a", check)

    def uri(self, stage: str, name: str, attempt: int = 1) -> str:
        """Where run `attempt` of `stage` writes the artifact `name`."""
        return self._artifacts(stage, attempt, lambda: None).uri(name)

    def run(self, stage: str, *, check: Callable[[], None] = lambda: None, attempt: int = 1) -> StageOutput:
        """Run `stage` (its checkpoint output is returned and kept for the stages after it)."""
        names = self.job_type.stage_names()
        if stage not in names:
            raise LookupError(f"job type {self.job_type.name!r} has no stage {stage!r}; its stages: {list(names)}")
        missing = [name for name in names[:names.index(stage)] if name not in self.outputs]
        if missing:
            raise LookupError(f"stage {stage!r} needs the outputs of {missing}: run them first")
        (definition,) = [s for s in self.job_type.stages if s.name == stage]
        earlier = {name: self.outputs[name] for name in names[:names.index(stage)]}
        ctx = Context(self.job_id, self.payload, stage, attempt, earlier, self._artifacts(stage, attempt, check),
                      self.runner.firestore, f"{self.job_id}-{stage}", job_logger(self.job_type.name),
                      check_fn=check, commit_fn=self._commit)
        output = json.loads(json.dumps(definition.run(ctx) or {}))  # a checkpoint must survive JSON
        self.outputs[stage] = output
        return output

    def rerun(self, stage: str) -> StageOutput:
        """`stage` again as a later run does: a new run, writing under its own prefix."""
        return self.run(stage, attempt=2)

    def run_all(self) -> dict[str, StageOutput]:
        for name in self.job_type.stage_names():
            self.run(name)
        return self.outputs

    def _commit(self, writes: list[Write]) -> None:
        batch = self.runner.firestore.batch()
        for write in writes:
            write(batch)
        batch.commit()

    def objects(self) -> list[str]:
        return self.runner.objects(self.job_id)

    def contents(self) -> dict[tuple[str, str], str]:
        """(stage, name) -> md5 of every object of the job, whichever run wrote it."""
        bucket = self.runner.bucket
        found = {}
        for blob in bucket.client.list_blobs(bucket, prefix=job_prefix(self.job_id)):
            _, _, stage, _run, name = blob.name.split("/", 4)
            found[(stage, name)] = blob.md5_hash
        return found

    def read(self, uri: str) -> bytes:
        return self.runner.read(uri)


# The local stack -----------------------------------------------------------------------------------------------

class StackHandle:
    """A running local stack serving your app: the API at `api_url`, Cloud Tasks dispatching to the task handler
    with real OIDC tokens, the scheduler's cleanup on demand (`trigger_cleanup()`)."""

    def __init__(self, stack: Any) -> None:
        from .apiclient import ApiClient  # noqa: PLC0415
        from .localclients import storage_api  # noqa: PLC0415

        self.stack = stack  # the oncetask_dev.stack.LocalStack
        self.settings: oncetask.Settings = stack.settings()
        self.api_url: str = stack.api_url
        self.api = ApiClient(self.api_url)
        self._storage = storage_api(stack.storage_host, self.settings.project_id)

    def submit(self, job_type: str, payload: Mapping[str, Any] | None = None, *, key: str | None = None) -> str:
        """`POST /jobs` over HTTP; the job's ID (ApiError with the API's status, code and field if refused)."""
        return str(self.api.submit(job_type, dict(payload or {}), key)["job_id"])

    def get(self, job_id: str) -> dict[str, Any]:
        """`GET /jobs/{id}`: the job as the API shows it."""
        return self.api.get(job_id)

    def wait(self, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Poll `GET /jobs/{id}` until the job is completed, failed or cancelled; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.api.get(job_id)
            if job["state"] in {s.value for s in TERMINAL}:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} is still {job['state']} after {timeout:g} s: {job}")
            time.sleep(0.05)

    def upload(self, name: str, data: bytes, content_type: str | None = None) -> str:
        """An input file in the stack's bucket; its gs:// URI."""
        bucket = self._storage.bucket(self.settings.bucket)
        bucket.blob(name).upload_from_string(data, content_type=content_type or "application/octet-stream")
        return f"gs://{bucket.name}/{name}"

    def read(self, uri: str) -> bytes:
        bucket, name = split_uri(uri)
        blob = self._storage.bucket(bucket).get_blob(name)
        if blob is None:
            raise FileNotFoundError(f"no object at {uri}")
        return blob.download_as_bytes()

    def trigger_cleanup(self, wait: float | None = 10.0) -> str:
        return self.stack.trigger_cleanup(wait)

    def jobs(self, state: str | None = None) -> Iterator[dict[str, Any]]:
        return self.api.iter_jobs(state)
