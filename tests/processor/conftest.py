"""The processor's test stack: the project's Firestore, Cloud Tasks and Storage emulators, and the real task
handler served over HTTP by functions-framework, so the Cloud Tasks emulator dispatches to it with its own OIDC
tokens."""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import functions_framework
import pytest

import oncetask
from google.api_core import exceptions as gexc
from werkzeug.serving import make_server

from fixtures.firestore import FirestoreEmulator
from fixtures.storage import StorageEmulator
from fixtures.tasks import TasksEmulator, wait_until
from oncetask.clients import storage_client
from oncetask.job import RESULTS, Job
from oncetask.services import Services
from oncetask.settings import Settings
from oncetask.artifacts import artifact_uris
from oncetask.states import JobState

from oncetask_dev.demoapp import app as demo_app
from oncetask_dev.provision import create_queues, job_queues

from . import served

MAIN = str(Path(__file__).with_name("entry.py"))  # what functions-framework serves: the current test's app
LEASE_TTL = 2.0  # seconds: a dead worker's job is free again quickly; a live one renews every third of it, in time
# even when a loaded machine stalls it for most of a second (1 s lost leases under CI's load)
LOCATION = "us-central1"

logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def storage_host(storage_emulator: StorageEmulator) -> str:
    """The session's Storage emulator, as STORAGE_EMULATOR_HOST takes it (http://H:P)."""
    return storage_emulator.host


@pytest.fixture(scope="session")
def handler_server() -> Iterator[str]:
    """The real `process_task` entry point, served by functions-framework over loopback HTTP."""
    app = functions_framework.create_app(target="process_task", source=MAIN, signature_type="http")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


@pytest.fixture(scope="session")
def api_app() -> Any:
    return functions_framework.create_app(target="api", source=MAIN, signature_type="http")


@pytest.fixture(scope="session")
def cleanup_app() -> Any:
    return functions_framework.create_app(target="cleanup_stale_locks", source=MAIN, signature_type="http")


@dataclass
class Stack:
    app: oncetask.App
    settings: Settings
    services: Services
    firestore_emulator: FirestoreEmulator
    tasks_emulator: TasksEmulator
    api_client: Any
    cleanup_client: Any
    others: list[Services] = field(default_factory=list)  # other workers' wirings (services_with), closed with it

    # The API -------------------------------------------------------------------------------------------------

    def submit(self, job_type: str = "test.pipeline", payload: dict[str, Any] | None = None,
               key: str | None = None, **request: Any) -> Any:
        body = {"job_type": job_type, "payload": payload or {}, "idempotency_key": key, **request}
        return self.api_client.post("/jobs", json=body)

    def submit_ok(self, *args: Any, **kwargs: Any) -> str:
        response = self.submit(*args, **kwargs)
        assert response.status_code == 202, response.get_json()
        return str(response.get_json()["job_id"])

    # Observation ---------------------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        job = self.services.store.get(job_id)
        assert job is not None, f"no job {job_id}"
        return job

    def doc(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return self.services.store.get_doc(collection, doc_id)

    def wait_state(self, job_id: str, *states: JobState, timeout: float = 20.0) -> Job:
        wait_until(lambda: self.job(job_id).state in states, timeout=timeout,
                   message=f"job {job_id} to reach {[s.value for s in states]}")
        return self.job(job_id)

    def artifacts(self, job_id: str) -> list[str]:
        bucket = self.services.bucket
        return sorted(b.name for b in bucket.client.list_blobs(bucket, prefix=f"jobs/{job_id}/"))

    def named_artifacts(self, job_id: str, checkpoints: dict[str, Any] | None = None) -> set[str]:
        """Object names under the job's prefix that its checkpoints name (in their outputs or artifact lists)."""
        checkpoints = self.job(job_id).checkpoints if checkpoints is None else checkpoints
        prefix = f"gs://{self.settings.bucket}/"
        uris = {uri for cp in checkpoints.values()
                for uri in (*artifact_uris(cp.get("output") or {}), *(cp.get("artifacts") or []))}
        return {uri[len(prefix):] for uri in uris if uri.startswith(f"{prefix}jobs/{job_id}/")}

    def artifact_problems(self, job_id: str) -> list[str]:
        """What breaks "every object under the job's prefix is named by a checkpoint, and every named one exists"
        (and, for a completed job, "its result names only existing objects"); empty when both hold."""
        objects, named = set(self.artifacts(job_id)), self.named_artifacts(job_id)
        problems = [f"not named by a checkpoint: {sorted(objects - named)}"] if objects - named else []
        problems += [f"named but missing: {sorted(named - objects)}"] if named - objects else []
        result = self.doc(RESULTS, job_id)
        if result is not None:
            in_result = self.named_artifacts(job_id, {s: {"output": o} for s, o in result["outputs"].items()})
            problems += [f"the result names missing objects: {sorted(in_result - objects)}"] if in_result - objects else []
        return problems

    def firestore_calls(self) -> dict[str, int]:
        """The product's Firestore calls by RPC, but the prompt-cancel listener's stream (`listens()`): one per
        worker process, opened with its first job and shared by all it runs, so it is no per-job cost."""
        calls = dict(self.firestore_emulator.stats(self.settings.project_id))
        calls.pop("Listen", None)
        return calls

    def listens(self) -> int:
        return int(self.firestore_emulator.stats(self.settings.project_id).get("Listen", 0))

    def services_with(self, **settings: Any) -> Services:
        """Another worker's wiring for this stack's app: these settings changed (e.g. a gate's host)."""
        services = Services(self.settings.model_copy(update=settings), self.app.job_types(), self.app.router(),
                            self.app.schedules)
        self.others.append(services)
        return services

    @property
    def queues(self) -> list[str]:
        """The full names of the app's job queues (every lane and shard)."""
        return job_queues(self.settings, self.app.manifest())

    def tasks(self) -> list[str]:
        client = self.services.queue.client
        return sorted(t.name for queue in self.queues for t in client.list_tasks(parent=queue))

    def pause(self) -> None:
        for queue in self.queues:
            self.services.queue.client.pause_queue(name=queue)

    def resume(self) -> None:
        for queue in self.queues:
            self.services.queue.client.resume_queue(name=queue)

    def cleanup(self, **headers: str) -> Any:
        return self.cleanup_client.post("/", headers=headers)


@pytest.fixture
def make_stack(firestore_emulator: FirestoreEmulator, tasks_emulator: TasksEmulator, storage_host: str,
               handler_server: str, api_app: Any, cleanup_app: Any) -> Iterator[Callable[..., Stack]]:
    """Build a stack with its own Firestore project, queue and settings (`make_stack(max_attempts=2, ...)`)."""
    built: list[Stack] = []
    # clients.py points the Google libraries at emulators through the process environment: put it back after.
    saved = {name: os.environ.get(name) for name in ("FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")}

    def make(paused: bool = False, create_queue: bool = True, apps: tuple[oncetask.App, ...] = (),
             **overrides: Any) -> Stack:
        """Options: `paused` (the queue does not dispatch), `apps` (job types beside the demo's), settings."""
        project = f"test-{uuid.uuid4().hex[:12]}"
        values: dict[str, Any] = {
            "ONCETASK_PROJECT_ID": project, "location": LOCATION, "queue_prefix": f"q{uuid.uuid4().hex[:10]}",
            "task_handler_url": handler_server, "oidc_certs_url": tasks_emulator.certs_url,
            "cleanup_audience": "http://cleanup.test/", "lease_ttl_seconds": LEASE_TTL,
            "FIRESTORE_EMULATOR_HOST": firestore_emulator.host, "CLOUD_TASKS_EMULATOR_HOST": tasks_emulator.host,
            "STORAGE_EMULATOR_HOST": storage_host, "orphan_grace_seconds": 0.5,
            "callback_queue": f"cb-{uuid.uuid4().hex[:10]}",
            # The processor's tests call the API without tokens, as the local stack does; the API's own tests of
            # authentication turn this back on (make_stack(api_require_auth=True, ...)).
            "api_require_auth": False,
        }
        values.update(overrides)
        settings = Settings(**values)
        lanes = tuple(apps[0].lanes.values()) if apps else oncetask.App().lanes.values()  # the first app's lanes
        app = oncetask.App("tests", lanes=tuple(lanes)).include(demo_app, *apps).configure(settings)
        services = app.services
        stack = Stack(app, settings, services, firestore_emulator, tasks_emulator,
                      api_app.test_client(), cleanup_app.test_client())
        if create_queue:
            create_queues(services.queue.client, settings, app.manifest())
        if paused:
            stack.pause()
        try:
            storage_client(settings).create_bucket(settings.bucket)
        except gexc.Conflict:
            pass  # the session's bucket exists already; job IDs keep tests apart
        served.use(app)
        built.append(stack)
        return stack

    yield make
    served.use(oncetask.App("tests").include(demo_app))
    for stack in built:  # their cancel listeners, or they would linger past the test with their streams and threads
        for services in (stack.services, *stack.others):
            services.close()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack()


def mint_token(tasks_emulator: TasksEmulator, target: Any, email: str, audience: str) -> str:
    """A real ID token signed by the Cloud Tasks emulator's key: dispatch a task to a recording target and take
    the Authorization header it received."""
    client = tasks_emulator.client()
    parent = "projects/oncetask-tokens/locations/us-central1"
    queue = f"{parent}/queues/t-{uuid.uuid4().hex[:10]}"
    client.create_queue(parent=parent, queue={"name": queue})
    before = len(target.requests)  # counted before the create: the dispatch can arrive before create_task returns
    client.create_task(parent=queue, task={"http_request": {
        "url": target.url, "http_method": "POST",
        "oidc_token": {"service_account_email": email, "audience": audience}}})
    request = target.wait_for(before + 1)[before]
    header = request.headers.get("Authorization") or request.headers.get("authorization")
    assert header and header.startswith("Bearer ")
    return str(header)

