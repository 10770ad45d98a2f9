"""What callers can do to jobs: submit, retry, cancel. Pure decisions come from the state table; the I/O is the
job store and the task queue."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pydantic
from google.api_core import exceptions as gexc
from google.cloud import firestore, storage

from .artifacts import JobArtifacts
from .errors import Conflict, JobNotFound, OncetaskError
from .job import FAILED_TASKS, Job
from .jobstore import JobStore, StaleWrite
from .logs import get_logger, log
from .naming import job_id_for, new_incarnation, payload_hash
from .settings import Settings
from .stages import JobType
from .states import TERMINAL, JobState
from .taskqueue import TaskQueue

LOG = get_logger("commands")
DELETE = firestore.DELETE_FIELD


class InvalidRequest(OncetaskError):
    """Bad input: names the field at fault."""

    code = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(self.code, message)
        self.field = field


@dataclass(frozen=True)
class Submitted:
    job_id: str
    status: str
    task_name: str | None


def validate_payload(job_type_name: str, payload: dict[str, Any],
                     registry: Mapping[str, JobType]) -> tuple[JobType, dict[str, Any]]:
    """The job type and the payload as its model normalises it, or InvalidRequest naming the field."""
    job_type = registry.get(job_type_name)
    if job_type is None:
        raise InvalidRequest("job_type", f"unknown job type {job_type_name!r}; known: {sorted(registry)}")
    try:
        model = job_type.validate(payload)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in ("payload", *first["loc"]))
        raise InvalidRequest(where, f"{where}: {first['msg']}") from exc
    return job_type, model.model_dump(mode="json")


class Commands:
    def __init__(self, store: JobStore, queue: TaskQueue, bucket: storage.Bucket, settings: Settings,
                 registry: Mapping[str, JobType]) -> None:
        self.store = store
        self.queue = queue
        self.bucket = bucket
        self.settings = settings
        self.registry = registry

    def submit(self, owner: str, job_type_name: str, payload: dict[str, Any], idempotency_key: str | None) -> Submitted:
        job_type, normalized = validate_payload(job_type_name, payload, self.registry)
        job_id = job_id_for(owner, job_type.name, idempotency_key)
        fingerprint = payload_hash(job_type.name, normalized)
        incarnation = new_incarnation()
        task_name = self.queue.name_for(job_id, 1, incarnation)
        now = firestore.SERVER_TIMESTAMP
        data = {
            "job_type": job_type.name, "payload": normalized, "payload_hash": fingerprint, "owner": owner,
            "idempotency_key": idempotency_key, "state": JobState.QUEUED.value, "generation": 1, "attempts": 0,
            "retry_base": 0, "fencing": 0, "cancel_requested": False, "checkpoints": {}, "errors": [],
            "incarnation": incarnation, "task_name": task_name, "created_at": now, "updated_at": now,
            "state_changed_at": now,
        }
        try:
            # Layer one of de-duplication: the document is created only if absent, and lasts (until retention),
            # long after Cloud Tasks forgets a task name.
            self.store.create(job_id, data)
        except gexc.AlreadyExists:
            return self._existing(job_id, fingerprint)
        # Layer two: the task's name is fixed by (job, generation); a retried request cannot make a second task.
        self.queue.enqueue(job_id, 1, incarnation)
        log(LOG, logging.INFO, "job submitted", job_id=job_id, job_type=job_type.name, task=task_name)
        return Submitted(job_id, "queued", task_name)

    def _existing(self, job_id: str, fingerprint: str) -> Submitted:
        job = self.store.get(job_id)
        if job is None:  # purged between our create and our read: vanishingly rare; let the caller retry
            raise Conflict(message="the job was removed while being submitted; retry the request")
        if job.payload_hash != fingerprint:
            raise Conflict(message="this idempotency key was used with a different payload")
        if job.state is JobState.QUEUED:
            # The first request may have crashed between the job write and the task create: create it now (the
            # deterministic name makes this a no-op when the task exists).
            self.queue.enqueue(job_id, job.generation, job.incarnation)
            return Submitted(job_id, "already_queued", job.task_name)
        status = "already_queued" if job.state is JobState.RETRYING else f"already_{job.state.value}"
        return Submitted(job_id, status, job.task_name)

    def get(self, owner: str, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None or job.owner != owner:  # another caller's job is as good as absent
            raise JobNotFound(message=f"no job {job_id}")
        return job

    def retry(self, owner: str, job_id: str) -> Submitted:
        """Re-queue a failed job under a new generation; its checkpoints stay, so it resumes at the failed stage."""
        for _ in range(3):
            job = self.get(owner, job_id)
            if job.state is not JobState.FAILED:
                raise Conflict(message=f"only failed jobs can be retried; this one is {job.state.value}")
            generation = job.generation + 1
            task_name = self.queue.name_for(job_id, generation, job.incarnation)
            try:
                self.store.commit(job, {
                    "generation": generation, "retry_base": job.attempts, "cancel_requested": False,
                    "expire_at": DELETE, "task_name": task_name,
                }, JobState.QUEUED, deletes=(FAILED_TASKS,))
            except StaleWrite:
                continue  # changed under us (a concurrent retry): look again
            self.queue.enqueue(job_id, generation, job.incarnation)
            log(LOG, logging.INFO, "job retried", job_id=job_id, generation=generation)
            return Submitted(job_id, "queued", task_name)
        raise Conflict(message="the job keeps changing; retry the request")

    def cancel(self, owner: str, job_id: str) -> Submitted:
        """Cancel a waiting job at once; ask a running one to stop (its worker ends it at the next check).

        A waiting job may have run before (a retry pending, or requeued after its worker died) and left objects of
        a stage it never finished. No one holds it, so they are swept here, up to the fencing token read, before the
        cancel is written fenced on that same version: a worker taking the job in between makes the write fail (we
        decide again), and its own objects carry a higher token, which the sweep leaves alone."""
        for _ in range(3):
            job = self.get(owner, job_id)
            if job.state is JobState.CANCELLED:
                return Submitted(job_id, "already_cancelled", job.task_name)
            if job.state in TERMINAL:
                raise Conflict(message=f"the job is already {job.state.value}")
            try:
                if job.state is JobState.RUNNING:
                    self.store.update(job, {"cancel_requested": True})
                    return Submitted(job_id, "cancel_requested", job.task_name)
                if job.fencing > 0:
                    JobArtifacts(self.bucket, job_id).sweep(job.checkpoints, up_to_fencing=job.fencing)
                self.store.update(job, {"cancel_requested": True, "expire_at": self._expire_at()},
                                  JobState.CANCELLED)
                return Submitted(job_id, "cancelled", job.task_name)
            except StaleWrite:
                continue  # a worker took or released it meanwhile: decide again on the new version
        raise Conflict(message="the job keeps changing; retry the request")


    def _expire_at(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(days=self.settings.retention_days)
