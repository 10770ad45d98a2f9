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
from .callbacks import Callbacks
from .cancelwatch import CancelWatch
from .children import ChildOutcome, Children
from .errors import Cancelled, ClassifiedError, LeaseLost, PermanentError, StageTimeout, classify
from .job import FAILED_TASKS, RESULTS, Job, with_error
from .jobstore import JobStore, StaleWrite, field as fpath
from .lease import Delivery, decide_delivery
from .leasekeeper import PROGRESS, RENEWED, LeaseKeeper
from .logs import Event, bound, get_logger, log, trace_resource
from .policy import attempts_spent
from .settings import Settings
from .shutdown import ShuttingDown
from .stages import Context, JobType, StageOutput
from .states import JobState
from .taskqueue import TaskQueue

LOG = get_logger("processor")
DELETE = firestore.DELETE_FIELD
LEASE_FIELDS = ("lease_owner", RENEWED, "lease_ttl")
MAX_SLEEP = timedelta(days=30)  # Cloud Tasks schedules a task at most 720 hours ahead

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
    headers: dict[str, str] = field(default_factory=dict)

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
                 registry: Mapping[str, JobType], queue: TaskQueue | None = None) -> None:
        self.store = store
        self.bucket = bucket
        self.settings = settings
        self.registry = registry
        self.queue = queue  # needed to park a job (next stage, sleep), start children and send callbacks
        self.children = Children(store, queue, settings, registry) if queue else None
        self.callbacks = Callbacks(store, queue, settings, registry) if queue else None
        # Prompt cancel: one listener for this process's lease holders, opened with the first job (cancelwatch.py).
        self.cancel_watch = CancelWatch(store) if settings.prompt_cancel else None

    def max_attempts(self, job_type_name: str) -> int:
        job_type = self.registry.get(job_type_name)
        return job_type.retry.max_attempts if job_type and job_type.retry else self.settings.max_attempts

    def handle(self, delivery: TaskDelivery) -> Outcome:
        with bound(job_id=delivery.job_id, task=delivery.task_name, attempt=delivery.retry_count + 1):
            job = self.store.get(delivery.job_id)
            if job is None:
                log(LOG, logging.WARNING, "task names a job that does not exist (purged?)")
                return Outcome(200, "not_found")
            # From here every line carries the job's own trace (the one its submission started) and its type.
            with bound(trace=trace_resource(job.trace_id, self.settings.project_id), job_type=job.job_type):
                return self._deliver(job, delivery)

    def _deliver(self, job: Job, delivery: TaskDelivery) -> Outcome:
        """One delivery of a job that exists: skip it, answer busy, or take the lease and run it."""
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
        if job.state is JobState.WAITING and not job.cancel_requested and not self._join_ready(job):
            # An early or duplicate wake-up: the children it waits for are not all done. Nothing to write.
            return Outcome(200, "still_waiting")
        return self._acquire_and_run(job, delivery)

    def _join_ready(self, job: Job) -> bool:
        waiting = job.waiting or {}
        if self.children is None or not waiting:
            return True
        done, failed = self.children.joined(job.job_id, waiting["stage"], {"count": waiting.get("expected", 0)})
        return done or (failed and waiting.get("policy") == "fail")

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
                "current_stage": job.current_stage if job.current_stage in todo else (todo[0] if todo else None),
                "errors": errors,
                "waiting": DELETE,
                "run_at": DELETE,
                PROGRESS: DELETE,  # a new attempt reports its own
                **({} if job.started_at else {"started_at": firestore.SERVER_TIMESTAMP}),
            }, JobState.RUNNING)
        except StaleWrite:
            # Someone wrote the job between our read and our write (another delivery, a cancel, cleanup).
            return CONFLICT
        log(LOG, logging.INFO, "lease acquired", fencing=job.fencing, job_attempt=job.attempts)
        keeper = LeaseKeeper(self.store, job, me, self.settings.lease_ttl_seconds,
                             self.settings.effective_heartbeat_seconds, sent, watch=self.cancel_watch)
        keeper.on_stage_timeout = lambda: self._timed_out(keeper, delivery)
        with keeper:
            return self._run(keeper, job_type, delivery)

    def _close(self, job: Job, errors: list[dict[str, Any]], to: JobState,
               delivery: TaskDelivery | None = None) -> Outcome:
        """End a job nobody holds (its lease lapsed, or it waits): cancelled as asked, or failed because its last
        attempt's worker died. Fenced on the version read, after sweeping what no checkpoint names."""
        JobArtifacts(self.bucket, job.job_id).sweep(job.checkpoints, up_to_fencing=job.fencing)
        last = errors[-1] if errors else ClassifiedError("TIMEOUT", "no attempts left", False).to_dict()
        error = last if to is JobState.FAILED else None
        extra, writes = self._ending(job, to, None, error)
        changes: dict[str, Any] = {**_clear_lease(), "errors": errors, "expire_at": self._expire_at(), **extra,
                                   "waiting": DELETE, "run_at": DELETE}
        sets: tuple[tuple[str, dict[str, Any]], ...] = ()
        if to is JobState.FAILED:
            sets = ((FAILED_TASKS, self._dead_letter(job, errors, last, delivery.task_name if delivery else "")),)
        try:
            ended = self.store.commit(job, changes, to, sets=sets, writes=writes)
        except StaleWrite:
            return CONFLICT
        log(LOG, logging.WARNING if to is JobState.FAILED else logging.INFO, f"job {to.value} without running",
            stage=job.current_stage, event=Event.JOB_FAILED if to is JobState.FAILED else Event.JOB_CANCELLED,
            code=(error or {}).get("code"))
        self._ended(ended, to, None, error)
        return Outcome(200, to.value)

    # The stages ------------------------------------------------------------------------------------------------

    def _run(self, keeper: LeaseKeeper, job_type: JobType | None, delivery: TaskDelivery) -> Outcome:
        job = keeper.job
        stage_name: str | None = None
        started: list[str] = []  # children started in this delivery: stopped too if the job ends badly
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
            stages = job_type.stages
            for index, stage in enumerate(stages):
                stage_name = stage.name
                keeper.check()
                checkpoint = keeper.job.checkpoints.get(stage.name)
                if checkpoint is not None and JobArtifacts(self.bucket, job.job_id).all_exist(
                        checkpoint_uris(checkpoint)):
                    log(LOG, logging.INFO, "stage skipped: checkpoint and artifacts exist", stage=stage.name)
                    outputs[stage.name] = checkpoint["output"]
                    continue
                if index > 0 and (parked := self._join(keeper, stages[index - 1].name, stage.name)):
                    return parked
                with bound(stage=stage.name):
                    keeper.begin_stage(stage.name, timeout)
                    artifacts = RunArtifacts(self.bucket, job.job_id, stage.name, run, keeper.check, keeper.time_left,
                                             min_seconds=min(1.0, self.settings.lease_ttl_seconds / 10))
                    runtime = _StageRuntime(self, keeper, stage.name, stages[index - 1].name if index else None,
                                            started)
                    context = Context(job.job_id, payload, stage.name, keeper.job.attempts, dict(outputs), artifacts,
                                      self.store.client, idempotency_key(job, stage.name), job_logger(job.job_type),
                                      keeper.check, keeper.commit_writes, runtime,
                                      progress_fn=keeper.report_progress)
                    output = _json_output(stage.run(context), stage.name)
                    outputs[stage.name] = output
                    log(LOG, logging.INFO, "stage done")
                keeper.check()
                done = _checkpoint(output, artifacts.written, keeper.job, runtime.join)
                following = stages[index + 1].name if index + 1 < len(stages) else None
                if runtime.join is not None:  # its children must end before anything follows
                    return self._park_waiting(keeper, stage.name, done, runtime.join, following)
                if following is None:
                    return self._complete(keeper, outputs, job_type, done)
                if runtime.sleep_until is not None:
                    return self._park(keeper, stage.name, done, following, run_at=runtime.sleep_until)
                if job_type.delivery == "per_stage":
                    return self._park(keeper, stage.name, done, following)
                keeper.write({fpath("checkpoints", stage.name): done, "current_stage": following})
            # Every stage was skipped: woken after the last stage's children, or an earlier run lost its completion.
            if parked := self._join(keeper, stages[-1].name, None):
                return parked
            return self._complete(keeper, outputs, job_type, None)
        except Cancelled:
            return self._cancel(keeper, stage_name, started)
        except ShuttingDown:
            return self._release(keeper, stage_name)
        except LeaseLost as exc:
            log(LOG, logging.WARNING, "lease lost: stopping without writing", reason=exc.message)
            return LEASE_LOST
        except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded, none escapes
            return self._fail(keeper, classify(exc, stage_name, keeper.job.attempts), delivery, started)

    # Parking: the job leaves this delivery without ending ------------------------------------------------------

    def _join(self, keeper: LeaseKeeper, stage: str, following: str | None) -> Outcome | None:
        """Before what follows `stage`: None when the children it started (if any) have all ended; otherwise the
        job waits for them. Under the `fail` policy a child that failed for good fails the job."""
        join = (keeper.job.checkpoints.get(stage) or {}).get("children")
        if not join:
            return None
        children = self._composition()
        done, failed = children.joined(keeper.job.job_id, stage, join)
        if failed and join.get("policy") == "fail":
            bad = next(o for o in children.outcomes(keeper.job.job_id, stage) if o.state != "completed")
            reason = (bad.error or {}).get("message") or bad.state
            raise PermanentError("CHILD_FAILED", f"child {bad.index} ({bad.job_type} {bad.job_id}) of stage {stage} "
                                                 f"ended {bad.state}: {reason}")
        return None if done else self._park_waiting(keeper, stage, None, join, following)

    def _park_waiting(self, keeper: LeaseKeeper, stage: str, done: dict[str, Any] | None, join: dict[str, Any],
                      following: str | None) -> Outcome:
        waiting = {"stage": stage, "expected": int(join["count"]), "policy": join.get("policy", "fail")}
        changes: dict[str, Any] = {**_clear_lease(), "waiting": waiting, "current_stage": following,
                                   "retry_base": keeper.job.attempts}
        if done is not None:
            changes[fpath("checkpoints", stage)] = done
        job = keeper.write(changes, JobState.WAITING)
        # Count again now that we wait: the last child may have ended before, and found this job still running.
        children = self._composition()
        ready, failed = children.joined(job.job_id, stage, join)
        if ready or (failed and waiting["policy"] == "fail"):
            children.wake(job, stage)
        log(LOG, logging.INFO, "job waits for its children", stage=stage, children=waiting["expected"])
        return Outcome(200, "waiting")

    def _park(self, keeper: LeaseKeeper, stage: str, done: dict[str, Any], following: str,
              run_at: datetime | None = None) -> Outcome:
        """Checkpoint `stage` and leave the next one to a new delivery (now, or at `run_at`): a new generation,
        whose task is created after the write (a crash in between leaves the cleanup a job without its task)."""
        queue = self._queue()
        job = keeper.job
        generation = job.generation + 1
        changes: dict[str, Any] = {
            **_clear_lease(), fpath("checkpoints", stage): done, "current_stage": following,
            "generation": generation, "retry_base": job.attempts,
            "task_name": queue.name_for(job.job_id, generation, job.incarnation, queue=queue.queue_of(job)),
        }
        if run_at is not None:
            changes["run_at"] = run_at
        job = keeper.write(changes, JobState.SCHEDULED if run_at is not None else JobState.QUEUED)
        queue.enqueue(job.job_id, generation, job.incarnation, queue=queue.queue_of(job), run_at=run_at,
                      trace_id=job.trace_id)
        log(LOG, logging.INFO, "next stage in its own delivery", stage=following,
            run_at=run_at.isoformat() if run_at else None)
        return Outcome(200, "sleeping" if run_at is not None else "next_stage")

    def _release(self, keeper: LeaseKeeper, stage: str | None) -> Outcome:
        """This instance is shutting down: keep nothing of the stage cut short, give the attempt back, and hand the
        job to a new task of the next generation, due now. Answering the old one 503 would leave the job to its
        retry, which Cloud Tasks holds for the queue's backoff (30 s by default) whatever Retry-After says."""
        queue = self._queue()
        job = keeper.job
        generation = job.generation + 1
        try:
            JobArtifacts(self.bucket, job.job_id).sweep(job.checkpoints, up_to_fencing=job.fencing)
            keeper.write({**_clear_lease(), "attempts": job.attempts - 1, "current_stage": stage,
                          "generation": generation,
                          "task_name": queue.name_for(job.job_id, generation, job.incarnation, queue=queue.queue_of(job))},
                         JobState.QUEUED)
        except (LeaseLost, Cancelled):
            return LEASE_LOST
        except Exception as exc:  # noqa: BLE001 - the lease lapses anyway; the task's retry takes over after it
            log(LOG, logging.WARNING, "could not release the job while shutting down", error=str(exc))
            return Outcome(503, "shutting_down", headers={"Retry-After": "1"})
        # After the write, as for a parked job: if this instance dies in between, the cleanup finds the lost task.
        queue.enqueue(job.job_id, generation, job.incarnation, queue=queue.queue_of(job))
        log(LOG, logging.INFO, "job handed over: this instance is shutting down", stage=stage, generation=generation)
        return Outcome(200, "handed_over")

    # Endings -----------------------------------------------------------------------------------------------------

    def _complete(self, keeper: LeaseKeeper, outputs: dict[str, StageOutput], job_type: JobType,
                  last_checkpoint: dict[str, Any] | None) -> Outcome:
        job = keeper.job
        now = utcnow()
        extra, writes = self._ending(job, JobState.COMPLETED, outputs, None)
        changes: dict[str, Any] = {
            **_clear_lease(),
            "current_stage": None,
            "completed_at": now,
            "expire_at": self._expire_at(now),
            PROGRESS: DELETE,  # done: the last stage's progress says nothing more
            **extra,
        }
        if last_checkpoint is not None:
            changes[fpath("checkpoints", job_type.stages[-1].name)] = last_checkpoint
        result = {"job_id": job.job_id, "job_type": job.job_type, "owner": job.owner, "outputs": outputs,
                  "completed_at": now, "expire_at": changes["expire_at"]}
        # One commit: the job completes and its result appears together, or neither does. The result is set, not
        # created: only the one write that completes the job can succeed (it is fenced), and a result an earlier
        # incarnation of this job ID left behind must not block this one.
        ended = keeper.write(changes, JobState.COMPLETED, sets=((RESULTS, result),), writes=writes)
        # From the first start (server time) to now (this machine's clock): a figure for the dashboard, not a
        # decision, so two clocks are acceptable here.
        duration = (now - job.started_at).total_seconds() if job.started_at else None
        log(LOG, logging.INFO, "job completed", event=Event.JOB_COMPLETED,
            duration_seconds=round(max(0.0, duration), 3) if duration is not None else None)
        self._ended(ended, JobState.COMPLETED, outputs, None)
        return Outcome(200, "completed")

    def _cancel(self, keeper: LeaseKeeper, stage_name: str | None, started: list[str] = ()) -> Outcome:
        job = keeper.job
        try:
            # The stage cut short left partial objects that no checkpoint names: none of them may stay.
            JobArtifacts(self.bucket, job.job_id).sweep(job.checkpoints, up_to_fencing=job.fencing)
            extra, writes = self._ending(job, JobState.CANCELLED, None, None)
            ended = keeper.write({**_clear_lease(), "current_stage": stage_name, "expire_at": self._expire_at(),
                                  **extra}, JobState.CANCELLED, writes=writes)
        except LeaseLost:
            return LEASE_LOST
        log(LOG, logging.INFO, "job cancelled", stage=stage_name, event=Event.JOB_CANCELLED)
        self._ended(ended, JobState.CANCELLED, None, None, started)
        return Outcome(200, "cancelled")

    def _fail(self, keeper: LeaseKeeper, error: ClassifiedError, delivery: TaskDelivery,
              started: list[str] = ()) -> Outcome:
        job = keeper.job
        errors = _with_error(job.errors, error)
        last = not error.retryable or attempts_spent(job.attempts_since_retry, self.max_attempts(job.job_type))
        level = logging.WARNING if not last else logging.ERROR
        # An Error Reporting event when there is a traceback (logs.py): grouped by its stack, the bugs apart.
        log(LOG, level, f"stage failed: {error.code}" + (" (a bug)" if error.is_bug else "") + f": {error.message}",
            event=Event.STAGE_FAILED, code=error.code, retryable=error.retryable, stage=error.stage,
            error_type=error.type, final=last, stack_trace=error.traceback)
        try:
            if not last:
                keeper.write({**_clear_lease(), "errors": errors}, JobState.RETRYING)
                return Outcome(RETRY_LATER, "retrying", {"error": _public(error)})
            # What the failed stage wrote has no checkpoint naming it, and no rerun will come to replace it.
            JobArtifacts(self.bucket, job.job_id).sweep(job.checkpoints, up_to_fencing=job.fencing)
            extra, writes = self._ending(job, JobState.FAILED, None, error.to_dict())
            # The job fails and its dead-letter record appears in one commit.
            ended = keeper.write({**_clear_lease(), "errors": errors, "expire_at": self._expire_at(), **extra},
                                 JobState.FAILED, writes=writes,
                                 sets=((FAILED_TASKS, self._dead_letter(job, errors, error.to_dict(),
                                                                        delivery.task_name)),))
        except Cancelled:
            return self._cancel(keeper, error.stage, started)
        except LeaseLost:
            return LEASE_LOST
        log(LOG, logging.ERROR, "job failed", event=Event.JOB_FAILED, code=error.code, stage=error.stage)
        self._ended(ended, JobState.FAILED, None, error.to_dict(), started)
        return Outcome(200, "failed", {"error": _public(error)})

    def _ending(self, job: Job, state: JobState, outputs: dict[str, Any] | None,
                error: dict[str, Any] | None) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """What a terminal commit carries besides the job's own fields: its callback's flag (and follow-up job),
        and, for a child, its outcome on its parent."""
        extra: dict[str, Any] = {}
        writes: tuple[Any, ...] = ()
        if job.callback and self.callbacks is not None:
            extra, writes = self.callbacks.for_ending(job, state)
        if job.parent and self.children is not None:
            writes = (*writes, self.children.outcome_write(job, state, outputs, error))
        return extra, writes

    def _ended(self, job: Job, state: JobState, outputs: dict[str, Any] | None, error: dict[str, Any] | None,
               started: list[str] = ()) -> None:
        """After a terminal commit: wake the parent, send the callback, stop this job's children if it ended badly.
        Each is best effort here, and finished by the cleanup if this worker dies first."""
        try:
            if job.parent and self.children is not None:
                self.children.notify_parent(job, state)
            if job.callback_pending and self.callbacks is not None:
                self.callbacks.fire(job, state, outputs, error)
            if state is not JobState.COMPLETED and self.children is not None and (started or _has_children(job)):
                self.children.cancel(job, list(started))
        except Exception as exc:  # noqa: BLE001 - the job has ended; the cleanup finishes what is left
            log(LOG, logging.WARNING, "could not finish what follows the job's end", error=str(exc))

    def _timed_out(self, keeper: LeaseKeeper, delivery: TaskDelivery) -> None:
        """Called by the heartbeat when a stage hangs past its deadline: end the attempt as its failure."""
        stage = keeper.job.current_stage
        self._fail(keeper, classify(StageTimeout(message=f"stage {stage} ran past its deadline"), stage,
                                    keeper.job.attempts), delivery)

    def _composition(self) -> Children:
        if self.children is None:
            raise PermanentError("NO_QUEUE", "this processor has no task queue: it cannot run child jobs")
        return self.children

    def _queue(self) -> TaskQueue:
        if self.queue is None:
            raise PermanentError("NO_QUEUE", "this processor has no task queue: it cannot park a job")
        return self.queue

    def _dead_letter(self, job: Job, errors: list[dict[str, Any]], last_error: dict[str, Any],
                     task_name: str) -> dict[str, Any]:
        now = utcnow()
        return {"job_id": job.job_id, "job_type": job.job_type, "owner": job.owner, "payload": job.payload,
                "errors": errors, "last_error": last_error, "task_name": task_name or job.task_name,
                "failed_at": now, "expire_at": self._expire_at(now)}

    def _expire_at(self, now: datetime | None = None) -> datetime:
        return (now or utcnow()) + timedelta(days=self.settings.retention_days)


class _StageRuntime:
    """What `ctx.start_children`, `ctx.children` and `ctx.sleep` do inside one stage of one delivery."""

    def __init__(self, processor: Processor, keeper: LeaseKeeper, stage: str, previous: str | None,
                 started: list[str]) -> None:
        self.processor = processor
        self.keeper = keeper
        self.stage = stage
        self.previous = previous
        self.started = started
        self.join: dict[str, Any] | None = None  # set once the stage started children
        self.sleep_until: datetime | None = None

    def start_children(self, stage: str, job_type: str, payloads: list[Any], on_failure: str) -> list[str]:
        if self.join is not None:
            raise PermanentError("INVALID_CHILDREN", f"stage {stage} starts children twice; a stage starts its "
                                                     "children in one call")
        ids = self.processor._composition().start(self.keeper.job, stage, job_type, payloads, on_failure,
                                                  self.keeper.commit_writes)
        self.started.extend(ids)
        self.join = {"count": len(ids), "policy": on_failure, "job_type": job_type}
        return ids

    def children(self, stage: str | None) -> list[ChildOutcome]:
        stage = stage or self.previous
        if stage is None:
            return []
        return self.processor._composition().outcomes(self.keeper.job.job_id, stage)

    def sleep(self, seconds: float | None, until: datetime | None) -> None:
        if (seconds is None) == (until is None):
            raise PermanentError("INVALID_SLEEP", "ctx.sleep takes seconds or until=, one of them")
        now = utcnow()
        if until is not None:
            if until.tzinfo is None:
                raise PermanentError("INVALID_SLEEP", "ctx.sleep(until=...) needs a timezone-aware datetime")
            run_at = until
        else:
            if not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
                raise PermanentError("INVALID_SLEEP", f"ctx.sleep needs a number of seconds >= 0, not {seconds!r}")
            run_at = now + timedelta(seconds=float(min(seconds, MAX_SLEEP.total_seconds() + 1)))
        if run_at - now > MAX_SLEEP:
            raise PermanentError("INVALID_SLEEP", f"ctx.sleep can wait at most {MAX_SLEEP.days} days (Cloud Tasks' "
                                                  "limit); chain sleeps across stages for longer")
        self.sleep_until = max(run_at, now)


def _has_children(job: Job) -> bool:
    return any(cp.get("children") for cp in job.checkpoints.values())


def _clear_lease() -> dict[str, Any]:
    return {name: DELETE for name in LEASE_FIELDS}


def _with_error(errors: list[dict[str, Any]], error: ClassifiedError) -> list[dict[str, Any]]:
    return with_error(errors, error.to_dict())


def _checkpoint(output: StageOutput, written: list[str], job: Job,
                join: dict[str, Any] | None = None) -> dict[str, Any]:
    checkpoint = {"output": output, "artifacts": list(written), "at": utcnow(), "attempt": job.attempts,
                  "fencing": job.fencing}
    if join is not None:
        checkpoint["children"] = join
    return checkpoint


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
        stored = json.loads(json.dumps(output, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise PermanentError("BAD_STAGE_OUTPUT", f"stage {stage} returned output that is not JSON: {exc}") from exc
    if where := _array_in_array(stored):
        raise PermanentError("BAD_STAGE_OUTPUT", f"stage {stage} returned a list directly inside a list at {where}, "
                                                 "which Firestore cannot store: use a list of objects")
    return stored


def _array_in_array(value: object, path: str = "output") -> str | None:
    """Where an array sits directly inside an array (Firestore refuses it), or None."""
    if isinstance(value, dict):
        return next((found for key, item in value.items() if (found := _array_in_array(item, f"{path}.{key}"))), None)
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, list):
                return f"{path}[{index}]"
            if found := _array_in_array(item, f"{path}[{index}]"):
                return found
    return None


def _public(error: ClassifiedError) -> dict[str, Any]:
    return {"code": error.code, "message": error.message, "stage": error.stage, "retryable": error.retryable}
