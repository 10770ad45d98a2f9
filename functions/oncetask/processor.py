"""The task handler's core: take the job's lease, run its stages with checkpoints, and record how it ended.

Firestore round trips on the happy path of an N-stage job: 1 read + 1 fenced acquire + (N-1) fenced checkpoints
+ 1 commit that completes the job, checkpoints its last stage and creates its result record together.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from google.cloud import firestore, storage

from .artifacts import ArtifactStore
from .errors import Cancelled, ClassifiedError, LeaseLost, PermanentError, classify
from .job import FAILED_TASKS, MAX_ERRORS_KEPT, RESULTS, Job
from .jobstore import JobStore, StaleWrite, field as fpath
from .jobtypes import REGISTRY
from .lease import Delivery, decide_delivery, lease_expiry
from .leasekeeper import LeaseKeeper
from .logs import bound, get_logger, log
from .policy import is_last_attempt
from .settings import Settings
from .stages import JobType, StageContext, StageOutput, artifact_uris
from .states import JobState

LOG = get_logger("processor")
DELETE = firestore.DELETE_FIELD
LEASE_FIELDS = ("lease_owner", "lease_expires_at")


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


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Processor:
    def __init__(self, store: JobStore, bucket: storage.Bucket, settings: Settings,
                 registry: dict[str, JobType] | None = None) -> None:
        self.store = store
        self.bucket = bucket
        self.settings = settings
        self.registry = REGISTRY if registry is None else registry

    def handle(self, delivery: TaskDelivery) -> Outcome:
        with bound(job_id=delivery.job_id, task=delivery.task_name, attempt=delivery.retry_count + 1):
            job = self.store.get(delivery.job_id)
            if job is None:
                log(LOG, logging.WARNING, "task names a job that does not exist (purged?)")
                return Outcome(200, "not_found")
            decision = decide_delivery(job.lease_view(), delivery.generation, utcnow())
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
        me = worker_id()
        sent = time.monotonic()
        if job.cancel_requested:
            try:
                self.store.update(job, {**_clear_lease(), "expire_at": self._expire_at()}, JobState.CANCELLED)
            except StaleWrite:
                return Outcome(409, "conflict")
            return Outcome(200, "cancelled")
        job_type = self.registry.get(job.job_type)
        todo = [stage.name for stage in job_type.stages if stage.name not in job.checkpoints] if job_type else []
        try:
            job = self.store.update(job, {
                "attempts": job.attempts + 1,
                "fencing": job.fencing + 1,  # grows with every acquisition: the lease's fencing token
                "lease_owner": me,
                "lease_expires_at": lease_expiry(utcnow(), self.settings.lease_ttl_seconds),
                "current_stage": todo[0] if todo else None,
            }, JobState.RUNNING)
        except StaleWrite:
            # Someone wrote the job between our read and our write (another delivery, a cancel, cleanup).
            return Outcome(409, "conflict")
        log(LOG, logging.INFO, "lease acquired", fencing=job.fencing, job_attempt=job.attempts)
        keeper = LeaseKeeper(self.store, job, me, self.settings.lease_ttl_seconds,
                             self.settings.effective_heartbeat_seconds, sent)
        with keeper:
            return self._run(keeper, job_type, delivery)

    # The stages ------------------------------------------------------------------------------------------------

    def _run(self, keeper: LeaseKeeper, job_type: JobType | None, delivery: TaskDelivery) -> Outcome:
        job = keeper.job
        stage_name: str | None = None
        try:
            if job_type is None:
                raise PermanentError("UNKNOWN_JOB_TYPE", f"no job type {job.job_type!r} is registered")
            payload = job_type.validate(job.payload)
            outputs: dict[str, StageOutput] = {}
            last = job_type.stages[-1].name
            for stage in job_type.stages:
                stage_name = stage.name
                keeper.check()
                artifacts = ArtifactStore(self.bucket, job.job_id, stage.name, keeper.check,
                                          use_preconditions=not self.settings.storage_emulator_host)
                checkpoint = keeper.job.checkpoints.get(stage.name)
                if checkpoint is not None and all(artifacts.exists(u) for u in artifact_uris(checkpoint["output"])):
                    log(LOG, logging.INFO, "stage skipped: checkpoint and artifacts exist", stage=stage.name)
                    outputs[stage.name] = checkpoint["output"]
                    continue
                with bound(stage=stage.name):
                    if job.fencing > 1:
                        # An earlier attempt may have left half of this stage's artifacts: start clean.
                        artifacts.delete_prefix()
                    context = StageContext(job.job_id, payload, stage.name, keeper.job.attempts, dict(outputs),
                                           artifacts, self.store.client, keeper.check)
                    output = _json_output(stage.run(context), stage.name)
                    outputs[stage.name] = output
                    log(LOG, logging.INFO, "stage done")
                if stage.name != last:
                    keeper.check()
                    next_stage = job_type.stages[job_type.stage_names().index(stage.name) + 1].name
                    keeper.write({fpath("checkpoints", stage.name): _checkpoint(output, keeper.job),
                                  "current_stage": next_stage})
            # stage_name stays the last stage: its checkpoint is written by the completing commit, so a cancel
            # that wins against that commit must still remove the last stage's (now orphaned) artifacts.
            return self._complete(keeper, outputs, job_type)
        except Cancelled:
            return self._cancel(keeper, stage_name)
        except LeaseLost as exc:
            log(LOG, logging.WARNING, "lease lost: stopping without writing", reason=exc.message)
            return LEASE_LOST
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded, none escapes
            return self._fail(keeper, classify(exc, stage_name, keeper.job.attempts), delivery, exc)

    def _complete(self, keeper: LeaseKeeper, outputs: dict[str, StageOutput], job_type: JobType) -> Outcome:
        job = keeper.job
        now = utcnow()
        last = job_type.stages[-1].name
        changes: dict[str, Any] = {
            **_clear_lease(),
            "current_stage": None,
            "completed_at": now,
            "expire_at": self._expire_at(now),
        }
        if last not in job.checkpoints:
            changes[fpath("checkpoints", last)] = _checkpoint(outputs[last], job)
        result = {"job_id": job.job_id, "job_type": job.job_type, "owner": job.owner, "outputs": outputs,
                  "completed_at": now, "expire_at": changes["expire_at"]}
        # One commit: the job completes and its result appears together, or neither does.
        keeper.write(changes, JobState.COMPLETED, creates=((RESULTS, result),))
        log(LOG, logging.INFO, "job completed")
        return Outcome(200, "completed")

    def _cancel(self, keeper: LeaseKeeper, stage_name: str | None) -> Outcome:
        job = keeper.job
        if stage_name is not None and stage_name not in job.checkpoints:
            # The stage was cut short: its artifacts are partial, so none of them may stay.
            ArtifactStore(self.bucket, job.job_id, stage_name).delete_prefix()
        try:
            keeper.write({**_clear_lease(), "current_stage": stage_name, "expire_at": self._expire_at()},
                         JobState.CANCELLED)
        except LeaseLost:
            return LEASE_LOST
        log(LOG, logging.INFO, "job cancelled", stage=stage_name)
        return Outcome(200, "cancelled")

    def _fail(self, keeper: LeaseKeeper, error: ClassifiedError, delivery: TaskDelivery,
              exc: BaseException) -> Outcome:
        job = keeper.job
        errors = [*job.errors, error.to_dict()][-MAX_ERRORS_KEPT:]
        last = is_last_attempt(delivery.retry_count, job.attempts_since_retry, self.settings.max_attempts)
        level = logging.WARNING if error.retryable and not last else logging.ERROR
        LOG.log(level, "stage failed", exc_info=exc if not isinstance(exc, PermanentError) else None,
                extra={"fields": {"code": error.code, "retryable": error.retryable, "stage": error.stage}})
        try:
            if error.retryable and not last:
                keeper.write({**_clear_lease(), "errors": errors}, JobState.RETRYING)
                return Outcome(503, "retrying", {"error": _public(error)})
            now = utcnow()
            expire_at = self._expire_at(now)
            dead_letter = {"job_id": job.job_id, "job_type": job.job_type, "owner": job.owner,
                           "payload": job.payload, "errors": errors, "last_error": error.to_dict(),
                           "task_name": delivery.task_name, "failed_at": now, "expire_at": expire_at}
            # The job fails and its dead-letter record appears in one commit.
            keeper.write({**_clear_lease(), "errors": errors, "expire_at": expire_at}, JobState.FAILED,
                         sets=((FAILED_TASKS, dead_letter),))
            if error.stage is not None and error.stage not in job.checkpoints:
                # What the failed stage wrote has no checkpoint naming it, and no rerun will come to replace it.
                ArtifactStore(self.bucket, job.job_id, error.stage).delete_prefix()
        except Cancelled:
            return self._cancel(keeper, error.stage)
        except LeaseLost:
            return LEASE_LOST
        return Outcome(200, "failed", {"error": _public(error)})

    def _expire_at(self, now: datetime | None = None) -> datetime:
        return (now or utcnow()) + timedelta(days=self.settings.retention_days)


def _clear_lease() -> dict[str, Any]:
    return {name: DELETE for name in LEASE_FIELDS}


def _checkpoint(output: StageOutput, job: Job) -> dict[str, Any]:
    return {"output": output, "at": utcnow(), "attempt": job.attempts, "fencing": job.fencing}


def _json_output(output: object, stage: str) -> StageOutput:
    if not isinstance(output, dict):
        raise PermanentError("BAD_STAGE_OUTPUT", f"stage {stage} returned {type(output).__name__}, not a dict")
    try:
        return json.loads(json.dumps(output))
    except (TypeError, ValueError) as exc:
        raise PermanentError("BAD_STAGE_OUTPUT", f"stage {stage} returned output that is not JSON: {exc}") from exc


def _public(error: ClassifiedError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "stage": error.stage, "retryable": error.retryable}
