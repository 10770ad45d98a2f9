"""The scheduled cleanup: recover jobs whose lease lapsed or whose task was lost, and purge expired jobs.

Overlapping runs are safe: every recovery is a write fenced on the job's update_time (only one run's write can
succeed for a given version of the job), and the task it creates is named after the new generation, so even a
crash between the write and the enqueue, followed by a second run, cannot produce two tasks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from google.cloud import firestore, storage

from .artifacts import delete_objects, object_prefix
from .errors import ClassifiedError
from .job import FAILED_TASKS, MAX_ERRORS_KEPT, Job
from .jobstore import JobStore, StaleWrite
from .lease import lease_lapsed
from .logs import get_logger, log
from .settings import Settings
from .states import JobState
from .taskqueue import TaskQueue

LOG = get_logger("cleanup")
DELETE = firestore.DELETE_FIELD


@dataclass
class CleanupReport:
    requeued: int = 0
    failed: int = 0
    purged: int = 0
    scanned: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"requeued": self.requeued, "failed": self.failed, "purged": self.purged, "scanned": self.scanned}


class Cleanup:
    def __init__(self, store: JobStore, queue: TaskQueue, bucket: storage.Bucket, settings: Settings) -> None:
        self.store = store
        self.queue = queue
        self.bucket = bucket
        self.settings = settings

    def run(self, now: datetime | None = None) -> CleanupReport:
        now = now or datetime.now(timezone.utc)
        report = CleanupReport()
        for job in self.store.lapsed_leases(now, self.settings.cleanup_page_size):
            report.scanned += 1
            if job.state is JobState.RUNNING and lease_lapsed(job.lease_expires_at, now):
                self._recover(job, report, "TIMEOUT", "the worker's lease lapsed (worker died or hung)")
        cutoff = now - timedelta(seconds=self.settings.orphan_grace_seconds)
        for job in self.store.untouched_waiting(cutoff, self.settings.cleanup_page_size):
            report.scanned += 1
            # A queued/retrying job whose task is gone (crash between job write and enqueue, or Cloud Tasks gave
            # up) would wait forever. GetTask is NOT_FOUND for a task that ran, too: hence the new generation.
            if not self.queue.exists(job.job_id, job.generation):
                self._recover(job, report, "TASK_LOST", "the job's task no longer exists")
        for job in self.store.expired(now, self.settings.cleanup_page_size):
            report.scanned += 1
            self._purge(job)
            report.purged += 1
        log(LOG, logging.INFO, "cleanup done", **report.to_dict())
        return report

    def _recover(self, job: Job, report: CleanupReport, code: str, message: str) -> None:
        now = datetime.now(timezone.utc)
        error = ClassifiedError(code, message, True, job.current_stage, job.attempts, now).to_dict()
        errors = [*job.errors, error][-MAX_ERRORS_KEPT:]
        lease = {"lease_owner": DELETE, "lease_expires_at": DELETE}
        try:
            if job.cancel_requested:
                # Cancelled while its worker was dead: finish the cancel instead of running it again.
                if job.current_stage and job.current_stage not in job.checkpoints:
                    delete_objects(self.bucket, object_prefix(job.job_id, job.current_stage))
                expire_at = now + timedelta(days=self.settings.retention_days)
                self.store.update(job, {**lease, "expire_at": expire_at}, JobState.CANCELLED)
                log(LOG, logging.INFO, "cancelled job's lapsed lease closed", job_id=job.job_id)
            elif job.attempts_since_retry < self.settings.max_attempts:
                generation = job.generation + 1
                self.store.update(job, {**lease, "generation": generation, "errors": errors,
                                        "task_name": self.queue.name_for(job.job_id, generation)}, JobState.QUEUED)
                # After the fenced write: a second cleanup run lost the race above and never gets here.
                self.queue.enqueue(job.job_id, generation)
                report.requeued += 1
                log(LOG, logging.WARNING, "job re-enqueued", job_id=job.job_id, generation=generation, code=code)
            else:
                expire_at = now + timedelta(days=self.settings.retention_days)
                dead_letter = {"job_id": job.job_id, "job_type": job.job_type, "owner": job.owner,
                               "payload": job.payload, "errors": errors, "last_error": error,
                               "task_name": job.task_name, "failed_at": now, "expire_at": expire_at}
                self.store.commit(job, {**lease, "errors": errors, "expire_at": expire_at}, JobState.FAILED,
                                  sets=((FAILED_TASKS, dead_letter),))
                if job.current_stage and job.current_stage not in job.checkpoints:
                    # The dead worker may have written part of the stage it was in; without a checkpoint nothing
                    # names those objects, and no rerun will replace them. After the fenced write, so only the
                    # run that failed the job cleans up (a manual retry's rerun clears the prefix itself).
                    delete_objects(self.bucket, object_prefix(job.job_id, job.current_stage))
                report.failed += 1
                log(LOG, logging.ERROR, "job failed: no attempts left", job_id=job.job_id, code=code)
        except StaleWrite:
            # The job moved on since the query (its worker renewed, or another cleanup run took it): leave it.
            log(LOG, logging.INFO, "job changed during cleanup; left alone", job_id=job.job_id)

    def _purge(self, job: Job) -> None:
        delete_objects(self.bucket, object_prefix(job.job_id))
        self.store.delete_job(job.job_id)
        log(LOG, logging.INFO, "expired job purged", job_id=job.job_id)

