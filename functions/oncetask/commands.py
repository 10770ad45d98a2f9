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
from .callbacks import Callbacks, check_callback
from .children import Children
from .errors import Conflict, InvalidRequest, JobNotFound, QuotaExceeded
from .job import FAILED_TASKS, Job, new_job_data
from .jobstore import JobStore, StaleWrite
from .logs import Event, bound, current_trace_id, get_logger, is_trace_id, log, new_trace_id, trace_resource
from .naming import job_id_for, new_incarnation, payload_hash
from .settings import Settings
from .stages import JobType
from .states import TERMINAL, JobState
from .taskqueue import TaskQueue

LOG = get_logger("commands")
DELETE = firestore.DELETE_FIELD


MAX_DELAY = timedelta(days=30) - timedelta(minutes=5)  # Cloud Tasks refuses a schedule time past 720 h


def scheduled_time(delay_seconds: float | None, run_at: datetime | None,
                   now: datetime | None = None) -> datetime | None:
    """When a submission asks to run, or None for now; `InvalidRequest` naming the field for what Cloud Tasks
    would refuse (a past or too distant time) or a request that gives both (pure)."""
    if delay_seconds is not None and run_at is not None:
        raise InvalidRequest("delay_seconds", "give delay_seconds or run_at, not both")
    now = now or datetime.now(timezone.utc)
    if delay_seconds is not None:
        if not 0 <= delay_seconds <= MAX_DELAY.total_seconds():
            raise InvalidRequest("delay_seconds", f"delay_seconds must be between 0 and "
                                                  f"{int(MAX_DELAY.total_seconds())} (30 days less 5 minutes)")
        return now + timedelta(seconds=delay_seconds) if delay_seconds > 0 else None
    if run_at is not None:
        if run_at.tzinfo is None:
            raise InvalidRequest("run_at", "run_at needs a timezone (e.g. 2026-12-01T09:00:00Z)")
        if run_at - now > MAX_DELAY:
            raise InvalidRequest("run_at", "run_at must be at most 30 days (less 5 minutes) from now")
        return run_at if run_at > now else None
    return None


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
        self.children = Children(store, queue, settings, registry)
        self.callbacks = Callbacks(store, queue, settings, registry)

    def submit(self, owner: str, job_type_name: str, payload: dict[str, Any], idempotency_key: str | None, *,
               delay_seconds: float | None = None, run_at: datetime | None = None,
               callback: dict[str, Any] | None = None, lane: str | None = None,
               trace_id: str | None = None) -> Submitted:
        """Create the job (once per key) and its task; with a delay or a run-at time the job is `scheduled` until
        then; with a callback, its end is told to a URL or starts a follow-up job. The job keeps `trace_id` (default:
        the trace of the request being served, else a new one) and every task of it carries that trace."""
        job_type, normalized = validate_payload(job_type_name, payload, self.registry)
        when = scheduled_time(delay_seconds, run_at)
        spec = check_callback(callback, self.settings, self.registry) if callback else job_type.callback
        job_id = job_id_for(owner, job_type.name, idempotency_key)
        # The request's content, as given (a retried request with the same delay computes another time, which is
        # not a different request).
        fingerprint = payload_hash(job_type.name, {"payload": normalized, "delay_seconds": delay_seconds,
                                                   "run_at": run_at.isoformat() if run_at else None,
                                                   "callback": callback, "lane": lane}
                                   if (when or callback or lane) else normalized)
        if self.settings.owner_quota:
            self._within_quota(owner, job_id, fingerprint)
        incarnation = new_incarnation()
        try:
            queue = self.queue.route(job_id, job_type.name, lane)
        except KeyError:
            raise InvalidRequest("lane", f"unknown lane {lane!r}; the app's lanes: "
                                         f"{sorted(self.queue.router.lanes)}") from None
        task_name = self.queue.name_for(job_id, 1, incarnation, queue=queue)
        trace_id = trace_id if is_trace_id(trace_id) else (current_trace_id() or new_trace_id())
        data = new_job_data(job_type.name, normalized, fingerprint, owner, idempotency_key, incarnation, task_name,
                            queue=queue, lane=lane or self.queue.router.lane_of(job_type.name), run_at=when,
                            callback=spec, trace_id=trace_id)
        try:
            # Layer one of de-duplication: the document is created only if absent, and lasts (until retention),
            # long after Cloud Tasks forgets a task name.
            self.store.create(job_id, data)
        except gexc.AlreadyExists:
            return self._existing(job_id, fingerprint)
        # Layer two: the task's name is fixed by (job, generation); a retried request cannot make a second task.
        self.queue.enqueue(job_id, 1, incarnation, queue=queue, run_at=when, trace_id=trace_id)
        with bound(trace=trace_resource(trace_id, self.settings.project_id)):
            log(LOG, logging.INFO, "job submitted", job_id=job_id, job_type=job_type.name, task=task_name,
                run_at=when.isoformat() if when else None, event=Event.JOB_SUBMITTED)
        return Submitted(job_id, "scheduled" if when else "queued", task_name)

    def _within_quota(self, owner: str, job_id: str, fingerprint: str) -> None:
        """Refuse a new job of an owner who has `owner_quota` active ones (429), writing nothing; a resubmission of
        an existing job is answered as usual. A count, not a reservation: submissions racing past the limit at the
        same moment may each see room, so the limit can be passed by as many as arrive together."""
        if self.store.get(job_id) is not None:
            return  # the create below finds it and answers with its status
        active = self.store.active_jobs(owner)
        if active >= self.settings.owner_quota:
            raise QuotaExceeded(message=f"{owner} has {active} active jobs (queued, scheduled, running, waiting or "
                                        f"retrying); the limit is {self.settings.owner_quota} (ONCETASK_OWNER_QUOTA)")

    def _existing(self, job_id: str, fingerprint: str) -> Submitted:
        job = self.store.get(job_id)
        if job is None:  # purged between our create and our read: vanishingly rare; let the caller retry
            raise Conflict(message="the job was removed while being submitted; retry the request")
        if job.payload_hash != fingerprint:
            raise Conflict(message="this idempotency key was used with a different payload")
        if job.state in (JobState.QUEUED, JobState.SCHEDULED):
            # The first request may have crashed between the job write and the task create: create it now (the
            # deterministic name makes this a no-op when the task exists).
            self.queue.enqueue(job_id, job.generation, job.incarnation, queue=self.queue.queue_of(job),
                               run_at=job.run_at, trace_id=job.trace_id)
            return Submitted(job_id, f"already_{job.state.value}", job.task_name)
        status = "already_queued" if job.state is JobState.RETRYING else f"already_{job.state.value}"
        return Submitted(job_id, status, job.task_name)

    def get(self, owner: str, job_id: str, *, operator: bool = False) -> Job:
        """The job, if `owner` owns it or the caller is an operator; JobNotFound otherwise."""
        job = self.store.get(job_id)
        if job is None or (job.owner != owner and not operator):  # another caller's job is as good as absent
            raise JobNotFound(message=f"no job {job_id}")
        return job

    def retry(self, owner: str, job_id: str, *, operator: bool = False) -> Submitted:
        """Re-queue a failed job under a new generation; its checkpoints stay, so it resumes at the failed stage."""
        for _ in range(3):
            job = self.get(owner, job_id, operator=operator)
            if job.state is not JobState.FAILED:
                raise Conflict(message=f"only failed jobs can be retried; this one is {job.state.value}")
            generation = job.generation + 1
            task_name = self.queue.name_for(job_id, generation, job.incarnation, queue=self.queue.queue_of(job))
            try:
                self.store.commit(job, {
                    "generation": generation, "retry_base": job.attempts, "cancel_requested": False,
                    "expire_at": DELETE, "task_name": task_name,
                }, JobState.QUEUED, deletes=(FAILED_TASKS,))
            except StaleWrite:
                continue  # changed under us (a concurrent retry): look again
            self.queue.enqueue(job_id, generation, job.incarnation, queue=self.queue.queue_of(job),
                               trace_id=job.trace_id)
            log(LOG, logging.INFO, "job retried", job_id=job_id, generation=generation)
            return Submitted(job_id, "queued", task_name)
        raise Conflict(message="the job keeps changing; retry the request")

    def cancel(self, owner: str, job_id: str, *, operator: bool = False) -> Submitted:
        """Cancel a waiting job at once; ask a running one to stop (its worker ends it at the next check).

        A waiting job may have run before (a retry pending, or requeued after its worker died) and left objects of
        a stage it never finished. No one holds it, so they are swept here, up to the fencing token read, before the
        cancel is written fenced on that same version: a worker taking the job in between makes the write fail (we
        decide again), and its own objects carry a higher token, which the sweep leaves alone."""
        for _ in range(3):
            job = self.get(owner, job_id, operator=operator)
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
                extra, writes = self.callbacks.for_ending(job, JobState.CANCELLED) if job.callback else ({}, ())
                if job.parent:
                    writes = (*writes, self.children.outcome_write(job, JobState.CANCELLED, None, None))
                ended = self.store.commit(job, {"cancel_requested": True, "expire_at": self._expire_at(),
                                                "waiting": DELETE, **extra}, JobState.CANCELLED, writes=writes)
            except StaleWrite:
                continue  # a worker took or released it meanwhile: decide again on the new version
            self._after_cancel(job, ended)
            return Submitted(job_id, "cancelled", job.task_name)
        raise Conflict(message="the job keeps changing; retry the request")

    def _after_cancel(self, before: Job, ended: Job) -> None:
        """What follows a waiting job's cancel: its task goes (a scheduled one would otherwise still be dispatched,
        and find nothing to do), its children stop, its parent and callback hear of it. Best effort: the cleanup
        finishes the parent's wake-up and the callback."""
        try:
            if before.state is JobState.SCHEDULED:
                self.queue.delete(before.job_id, before.generation, before.incarnation,
                                  queue=self.queue.queue_of(before))
            if before.state is JobState.WAITING or any(cp.get("children") for cp in before.checkpoints.values()):
                self.children.cancel(before)
            if ended.parent:
                self.children.notify_parent(ended, JobState.CANCELLED)
            if ended.callback_pending:
                self.callbacks.fire(ended, JobState.CANCELLED)
        except Exception as exc:  # noqa: BLE001 - the cancel itself is written; the rest is the cleanup's backstop
            log(LOG, logging.WARNING, "could not finish what follows a cancel", job_id=before.job_id, error=str(exc))

    def _expire_at(self) -> datetime:
        return datetime.now(timezone.utc) + timedelta(days=self.settings.retention_days)
