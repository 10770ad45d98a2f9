"""The task handler's core: take the job's lease, run its stages with checkpoints, and record how it ended.

Firestore round trips on the happy path of an N-stage job: 1 read + 1 fenced acquire + (N-1) fenced checkpoints
+ 1 commit that completes the job, checkpoints its last stage and writes its result record together.

Only a lease holder, or a delivery that found no live holder and fences its write on the version it read, ever
ends a job; before it ends one as failed or cancelled it sweeps the objects no checkpoint names (`artifacts.py`),
so a finished job keeps exactly what its checkpoints name.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from google.cloud import firestore, storage

from .artifacts import JobArtifacts, RunArtifacts, checkpoint_uris, new_run
from .errors import Cancelled, ClassifiedError, LeaseLost, PermanentError, StageTimeout, classify
from .job import FAILED_TASKS, MAX_ERRORS_KEPT, RESULTS, Job
from .jobstore import JobStore, StaleWrite, field as fpath
from .lease import Delivery, decide_delivery
from .leasekeeper import RENEWED, LeaseKeeper
from .logs import bound, get_logger, log
from .policy import attempts_spent
from .settings import Settings
from .stages import Context, JobType, StageOutput
from .states import JobState

LOG = get_logger("processor")
DELETE = firestore.DELETE_FIELD
LEASE_FIELDS = ("lease_owner", RENEWED, "lease_ttl")

# A job's own transient failure: not 2xx, so Cloud Tasks retries the task with the queue's backoff, and neither 429
# nor 503, which Cloud Tasks takes as the handler being overloaded and answers by throttling the whole queue.
RETRY_LATER = 424


@dataclass(frozen=True)
class TaskDelivery:
    """One delivery of a task: its body and the X-CloudTasks-* headers that matter."""

    job_id: str
    generation: int
    task_name: str = ""
    retry_count: int = 0
    execution_count: int = 0


@dataclass(frozen=True)
class Outcome:
    """What the handler answers: 2xx ends the task, anything else makes Cloud Tasks retry it."""

    status: int
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"outcome": self.outcome, **self.detail}


# Not 2xx: if the lease only lapsed (a starved heartbeat) and nobody took over, the task's retry picks the job up
# again instead of leaving it `running` until the next cleanup; if someone did take over, the retry finds it busy
# or finished, which is harmless.
LEASE_LOST = Outcome(409, "lease_lost")
CONFLICT = Outcome(409, "conflict")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Processor:
    def __init__(self, store: JobStore, bucket: storage.Bucket, settings: Settings,
                 registry: Mapping[str, JobType]) -> None:
        self.store = store
        self.bucket = bucket
        self.settings = settings
        self.registry = registry

    def max_attempts(self, job_type_name: str) -> int:
        job_type = self.registry.get(job_type_name)
        return job_type.retry.max_attempts if job_type and job_type.retry else self.settings.max_attempts

    def handle(self, delivery: TaskDelivery) -> Outcome:
        with bound(job_id=delivery.job_id, task=delivery.task_name, attempt=delivery.retry_count + 1):
            job = self.store.get(delivery.job_id)
            if job is None:
                log(LOG, logging.WARNING, "task names a job that does not exist (purged?)")
                return Outcome(200, "not_found")
            decision = decide_delivery(job.lease_view(self.settings.lease_ttl_seconds), delivery.generation)
            if decision is Delivery.SKIP_DONE:
                log(LOG, logging.INFO, "job already finished; redelivery skipped", state=job.state.value)
                return Outcome(200, "already_" + job.state.value)
            if decision is Delivery.SKIP_STALE:
                log(LOG, logging.INFO, "task of an older generation skipped", job_generation=job.generation)
                return Outcome(200, "stale_generation")
            if decision is Delivery.BUSY:
                # Another worker holds a live lease. Not 2xx: if that worker dies, this task's retry takes over.
                log(LOG, logging.INFO, "job is running under another worker's lease")
                return Outcome(409, "busy")
            return self._acquire_and_run(job, delivery)

    # The lease -------------------------------------------------------------------------------------------------

    def _acquire_and_run(self, job: Job, delivery: TaskDelivery) -> Outcome:
        errors = job.errors
        if job.state is JobState.RUNNING:
            # Its holder stopped renewing (died, hung, cut off) before it could say how the attempt ended.
            errors = _with_error(errors, ClassifiedError("TIMEOUT", "the worker's lease lapsed (it died or hung)",
                                                         True, job.current_stage, job.attempts))
        if job.cancel_requested:
            return self._close(job, errors, JobState.CANCELLED)
        if attempts_spent(job.attempts_since_retry, self.max_attempts(job.job_type)):
            return self._close(job, errors, JobState.FAILED, delivery)  # the last attempt's worker died
        job_type = self.registry.get(job.job_type)
        todo = [stage.name for stage in job_type.stages if stage.name not in job.checkpoints] if job_type else []
        me = worker_id()
        sent = time.monotonic()
        try:
            job = self.store.update(job, {
                "attempts": job.attempts + 1,
                "fencing": job.fencing + 1,  # grows with every acquisition: the lease's fencing token
                "lease_owner": me,
                RENEWED: firestore.SERVER_TIMESTAMP,
                "lease_ttl": self.settings.lease_ttl_seconds,
                "current_stage": todo[0] if todo else None,
                "errors": errors,
            }, JobState.RUNNING)
        except StaleWrite:
            # Someone wrote the job between our read and our write (another delivery, a cancel, cleanup).
            return CONFLICT
        log(LOG, logging.INFO, "lease acquired", fencing=job.fencing, job_attempt=job.attempts)
        keeper = LeaseKeeper(self.store, job, me, self.settings.lease_ttl_seconds,
                             self.settings.effective_heartbeat_seconds, sent)
        keeper.on_stage_timeout = lambda: self._timed_out(keeper, delivery)
        with keeper:
            return self._run(keeper, job_type, delivery)

    def _close(self, job: Job, errors: list[dict[str, Any]], to: JobState,
               delivery: TaskDelivery | None = None) -> Outcome:
        """End a job nobody holds (its lease lapsed, or it waits): cancelled as asked, or failed because its last
        attempt's worker died. Fenced on the version read, after sweeping what no checkpoint names."""
        JobArtifacts(self.bucket, job.job_id).sweep(job.checkpoints, up_to_fencing=job.fencing)
        changes: dict[str, Any] = {**_clear_lease(), "errors": errors, "expire_at": self._expire_at()}
        sets: tuple[tuple[str, dict[str, Any]], ...] = ()
        if to is JobState.FAILED:
            last = errors[-1] if errors else ClassifiedError("TIMEOUT", "no attempts left", False).to_dict()
            sets = ((FAILED_TASKS, self._dead_letter(job, errors, last, delivery.task_name if delivery else "")),)
        try:
            self.store.commit(job, changes, to, sets=sets)
        except StaleWrite:
            return CONFLICT
        log(LOG, logging.INFO, f"job {to.value} without running", stage=job.current_stage)
        return Outcome(200, to.value)

    # The stages ------------------------------------------------------------------------------------------------

    def _run(self, keeper: LeaseKeeper, job_type: JobType | None, delivery: TaskDelivery) -> Outcome:
        job = keeper.job
        stage_name: str | None = None
        try:
            if job.fencing > 1:
                # Earlier runs may have stopped mid-stage: their objects that no checkpoint names are garbage.
                JobArtifacts(self.bucket, job.job_id).sweep(job.checkpoints, up_to_fencing=job.fencing)
            if job_type is None:
                raise PermanentError("UNKNOWN_JOB_TYPE", f"no job type {job.job_type!r} is registered")
            payload = job_type.validate(job.payload)
            timeout = job_type.stage_timeout_seconds or self.settings.effective_stage_timeout_seconds
            run = new_run(job.fencing)
            outputs: dict[str, StageOutput] = {}
            last = job_type.stages[-1].name
            for index, stage in enumerate(job_type.stages):
                stage_name = stage.name
                keeper.check()
                checkpoint = keeper.job.checkpoints.get(stage.name)
                if checkpoint is not None and JobArtifacts(self.bucket, job.job_id).all_exist(
                        checkpoint_uris(checkpoint)):
                    log(LOG, logging.INFO, "stage skipped: checkpoint and artifacts exist", stage=stage.name)
                    outputs[stage.name] = checkpoint["output"]
                    continue
                with bound(stage=stage.name):
                    keeper.begin_stage(stage.name, timeout)
                    artifacts = RunArtifacts(self.bucket, job.job_id, stage.name, run, keeper.check, keeper.time_left,
                                             min_seconds=min(1.0, self.settings.lease_ttl_seconds / 10))
                    context = Context(job.job_id, payload, stage.name, keeper.job.attempts, dict(outputs), artifacts,
                                      self.store.client, idempotency_key(job, stage.name), job_logger(job.job_type),
                                      keeper.check, keeper.commit_writes)
                    output = _json_output(stage.run(context), stage.name)
                    outputs[stage.name] = output
                    log(LOG, logging.INFO, "stage done")
                keeper.check()
                done = _checkpoint(output, artifacts.written, keeper.job)
                if stage.name == last:
                    return self._complete(keeper, outputs, job_type, done)
                keeper.write({fpath("checkpoints", stage.name): done,
                              "current_stage": job_type.stages[index + 1].name})
            # Every stage was skipped: only the completing commit is left (an earlier run lost it).
            return self._complete(keeper, outputs, job_type, None)
        except Cancelled:
            return self._cancel(keeper, stage_name)
        except LeaseLost as exc:
            log(LOG, logging.WARNING, "lease lost: stopping without writing", reason=exc.message)
            return LEASE_LOST
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded, none escapes
            return self._fail(keeper, classify(exc, stage_name, keeper.job.attempts), delivery, exc)

    def _complete(self, keeper: LeaseKeeper, outputs: dict[str, StageOutput], job_type: JobType,
                  last_checkpoint: dict[str, Any] | None) -> Outcome:
        job = keeper.job
        now = utcnow()
        changes: dict[str, Any] = {
            **_clear_lease(),
            "current_stage": None,
            "completed_at": now,
            "expire_at": self._expire_at(now),
        }
        if last_checkpoint is not None:
            changes[fpath("checkpoints", job_type.stages[-1].name)] = last_checkpoint
        result = {"job_id": job.job_id, "job_type": job.job_type, "owner": job.owner, "outputs": outputs,
                  "completed_at": now, "expire_at": changes["expire_at"]}
        # One commit: the job completes and its result appears together, or neither does. The result is set, not
        # created: only the one write that completes the job can succeed (it is fenced), and a result an earlier
        # incarnation of this job ID left behind must not block this one.
        keeper.write(changes, JobState.COMPLETED, sets=((RESULTS, result),))
        log(LOG, logging.INFO, "job completed")
        return Outcome(200, "completed")

    def _cancel(self, keeper: LeaseKeeper, stage_name: str | None) -> Outcome:
        job = keeper.job
        try:
            # The stage cut short left partial objects that no checkpoint names: none of them may stay.
            JobArtifacts(self.bucket, job.job_id).sweep(job.checkpoints, up_to_fencing=job.fencing)
            keeper.write({**_clear_lease(), "current_stage": stage_name, "expire_at": self._expire_at()},
                         JobState.CANCELLED)
        except LeaseLost:
            return LEASE_LOST
        log(LOG, logging.INFO, "job cancelled", stage=stage_name)
        return Outcome(200, "cancelled")

    def _fail(self, keeper: LeaseKeeper, error: ClassifiedError, delivery: TaskDelivery,
              exc: BaseException) -> Outcome:
        job = keeper.job
        errors = _with_error(job.errors, error)
        last = not error.retryable or attempts_spent(job.attempts_since_retry, self.max_attempts(job.job_type))
        level = logging.WARNING if not last else logging.ERROR
        LOG.log(level, "stage failed",
                exc_info=exc if not isinstance(exc, (PermanentError, StageTimeout)) else None,
                extra={"fields": {"code": error.code, "retryable": error.retryable, "stage": error.stage}})
        try:
            if not last:
                keeper.write({**_clear_lease(), "errors": errors}, JobState.RETRYING)
                return Outcome(RETRY_LATER, "retrying", {"error": _public(error)})
            # What the failed stage wrote has no checkpoint naming it, and no rerun will come to replace it.
            JobArtifacts(self.bucket, job.job_id).sweep(job.checkpoints, up_to_fencing=job.fencing)
            expire_at = self._expire_at()
            # The job fails and its dead-letter record appears in one commit.
            keeper.write({**_clear_lease(), "errors": errors, "expire_at": expire_at}, JobState.FAILED,
                         sets=((FAILED_TASKS, self._dead_letter(job, errors, error.to_dict(), delivery.task_name)),))
        except Cancelled:
            return self._cancel(keeper, error.stage)
        except LeaseLost:
            return LEASE_LOST
        return Outcome(200, "failed", {"error": _public(error)})

    def _timed_out(self, keeper: LeaseKeeper, delivery: TaskDelivery) -> None:
        """Called by the heartbeat when a stage hangs past its deadline: end the attempt as its failure."""
        stage = keeper.job.current_stage
        self._fail(keeper, classify(StageTimeout(message=f"stage {stage} ran past its deadline"), stage,
                                    keeper.job.attempts), delivery, StageTimeout())

    def _dead_letter(self, job: Job, errors: list[dict[str, Any]], last_error: dict[str, Any],
                     task_name: str) -> dict[str, Any]:
        now = utcnow()
        return {"job_id": job.job_id, "job_type": job.job_type, "owner": job.owner, "payload": job.payload,
                "errors": errors, "last_error": last_error, "task_name": task_name or job.task_name,
                "failed_at": now, "expire_at": self._expire_at(now)}

    def _expire_at(self, now: datetime | None = None) -> datetime:
        return (now or utcnow()) + timedelta(days=self.settings.retention_days)


def _clear_lease() -> dict[str, Any]:
    return {name: DELETE for name in LEASE_FIELDS}


def _with_error(errors: list[dict[str, Any]], error: ClassifiedError) -> list[dict[str, Any]]:
    return [*errors, error.to_dict()][-MAX_ERRORS_KEPT:]


def _checkpoint(output: StageOutput, written: list[str], job: Job) -> dict[str, Any]:
    return {"output": output, "artifacts": list(written), "at": utcnow(), "attempt": job.attempts,
            "fencing": job.fencing}


def idempotency_key(job: Job, stage: str) -> str:
    """The same for every run of one stage of one job (its retries and manual retries), different for anything
    else, including a later incarnation of the same job ID."""
    return f"{job.job_id}-{job.incarnation}-{stage}" if job.incarnation else f"{job.job_id}-{stage}"


def job_logger(job_type: str) -> logging.Logger:
    """A stage's `ctx.log`: its lines carry the job, task, attempt, stage and trace like the processor's own."""
    return logging.getLogger(f"oncetask.jobs.{job_type}")


def _json_output(output: object, stage: str) -> StageOutput:
    if output is None:
        return {}
    if not isinstance(output, dict):
        raise PermanentError("BAD_STAGE_OUTPUT", f"stage {stage} returned {type(output).__name__}, not a dict")
    try:
        return json.loads(json.dumps(output))
    except (TypeError, ValueError) as exc:
        raise PermanentError("BAD_STAGE_OUTPUT", f"stage {stage} returned output that is not JSON: {exc}") from exc


def _public(error: ClassifiedError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "stage": error.stage, "retryable": error.retryable}
