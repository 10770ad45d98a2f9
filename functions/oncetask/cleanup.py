"""The scheduled cleanup: enqueue again the jobs whose lease lapsed or whose task was lost, and purge expired jobs.

The cleanup never runs or ends a job: it only makes sure a job that is not finished has a task. A job whose last
attempt died, or whose cancel was asked while its worker was dead, is ended by the delivery of that task, which
holds the only right to sweep its garbage. Lapsed leases are judged by server time (see `lease.py`).

Overlapping runs are safe: every recovery is a write fenced on the job's update_time (only one run's write can
succeed for a given version of the job), and the task it creates is named after the new generation, so even a
crash between the write and the enqueue, followed by a second run, cannot produce two tasks. One job's trouble
(a storage error, a failed enqueue) is counted and logged; it never stops the recovery of the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from google.cloud import firestore, storage

from .artifacts import JobArtifacts
from .callbacks import Callbacks
from .children import Children
from .errors import ClassifiedError
from .job import Job, with_error
from .jobstore import JobStore, StaleWrite
from .lease import lease_lapsed
from .leasekeeper import RENEWED
from .logs import Event, bound, get_logger, log, trace_resource
from .settings import Settings
from .stages import JobType
from .states import TERMINAL, JobState
from .taskqueue import QueueReader, TaskQueue

LOG = get_logger("cleanup")
DELETE = firestore.DELETE_FIELD


@dataclass
class CleanupReport:
    requeued: int = 0
    purged: int = 0
    scanned: int = 0
    errors: int = 0  # jobs whose recovery or purge failed (logged); the next run tries them again

    def to_dict(self) -> dict[str, int]:
        return {"requeued": self.requeued, "purged": self.purged, "scanned": self.scanned, "errors": self.errors}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Cleanup:
    def __init__(self, store: JobStore, queue: TaskQueue, bucket: storage.Bucket, settings: Settings,
                 registry: Mapping[str, JobType] | None = None, reader: QueueReader | None = None,
                 queues: Sequence[str] = ()) -> None:
        self.store = store
        self.reader = reader  # to log each queue's figures, which the oldest-task-age alert reads
        self.queues = list(queues)
        self.queue = queue
        self.bucket = bucket
        self.settings = settings
        self.children = Children(store, queue, settings, registry or {})
        self.callbacks = Callbacks(store, queue, settings, registry or {})

    def run(self, now: datetime | None = None) -> CleanupReport:
        """One pass. `now` is this machine's clock, used only for retention (days); leases and lost tasks are
        judged by the server's."""
        now = now or utcnow()
        report = CleanupReport()
        server_now = self.store.server_time()
        s = self.settings
        for job in self.store.unrenewed_leases(server_now - timedelta(seconds=s.lease_ttl_seconds),
                                               s.cleanup_page_size):
            report.scanned += 1
            if job.state is JobState.RUNNING and lease_lapsed(job.lease_renewed_at,
                                                              job.lease_ttl or s.lease_ttl_seconds, server_now):
                self._guarded(report, job, lambda j=job: self._requeue(
                    j, report, "TIMEOUT", "the worker's lease lapsed (it died or hung)"))
        cutoff = server_now - timedelta(seconds=s.orphan_grace_seconds)
        passes: list[tuple[Iterable[Job], Callable[[Job, CleanupReport], None]]] = [
            (self.store.untouched_waiting(cutoff, s.cleanup_page_size), self._recover_lost_task),
            (self.store.scheduled_overdue(cutoff, s.cleanup_page_size), self._recover_lost_task),
            (self.store.waiting_untouched(cutoff, s.cleanup_page_size), self._wake_if_done),
            (self.store.callbacks_pending(cutoff, s.cleanup_page_size), self._send_callback),
            (self.store.expired(now, s.cleanup_page_size), self._purge),
        ]
        for jobs, step in passes:  # each query runs as its pass starts: the queries are lazy pages
            for job in jobs:
                report.scanned += 1
                self._guarded(report, job, lambda j=job, step=step: step(j, report))
        self._log_queues(now)
        log(LOG, logging.INFO, "cleanup done", **report.to_dict())
        return report

    def _log_queues(self, now: datetime) -> None:
        """One line per queue with its depth and oldest task's age (one GetQueue each, every run): Cloud Monitoring
        has the depth as a metric but not the age, so the log-based metric on these lines is what alerts on it."""
        if self.reader is None:
            return
        for name in self.queues:
            try:
                reading = self.reader.read(name)
            except Exception as exc:  # noqa: BLE001 - figures only: the cleanup's work is done
                log(LOG, logging.WARNING, "queue figures could not be read", queue=name, error=str(exc))
                continue
            age = max(0.0, (now - reading.oldest_due).total_seconds()) if reading.oldest_due else 0.0
            log(LOG, logging.INFO, "queue figures", event=Event.QUEUE_STATS, queue=name, queue_state=reading.state,
                depth=reading.depth, oldest_task_age_seconds=round(age, 3), in_flight=reading.in_flight,
                dispatched_last_minute=reading.dispatched_last_minute)

    @staticmethod
    def _guarded(report: CleanupReport, job: Job, step: Callable[[], None]) -> None:
        try:
            step()
        except StaleWrite:
            # The job moved on since the query (its worker renewed, a retry, another cleanup run): leave it.
            log(LOG, logging.INFO, "job changed during cleanup; left alone", job_id=job.job_id)
        except Exception as exc:  # noqa: BLE001 - one job's trouble must not stop the others' recovery
            report.errors += 1
            LOG.error("cleanup of one job failed; going on with the others", exc_info=exc,
                      extra={"fields": {"job_id": job.job_id}})

    def _recover_lost_task(self, job: Job, report: CleanupReport) -> None:
        # A queued/retrying job whose task is gone (crash between job write and enqueue, or Cloud Tasks gave up
        # while the job still had attempts) would wait forever. GetTask is NOT_FOUND for a task that ran, too:
        # hence the new generation.
        if not self.queue.exists(job.job_id, job.generation, job.incarnation, queue=self.queue.queue_of(job)):
            self._requeue(job, report, "TASK_LOST", "the job's task no longer exists")

    def _wake_if_done(self, job: Job, report: CleanupReport) -> None:
        """A parent waiting for children that have all ended, whose wake-up was lost (its wakers died first)."""
        waiting = job.waiting or {}
        if not waiting:
            return
        done, failed = self.children.joined(job.job_id, waiting["stage"], {"count": waiting.get("expected", 0)})
        if done or (failed and waiting.get("policy") == "fail"):
            self.children.wake(job, waiting["stage"])
            report.requeued += 1
            log(LOG, logging.WARNING, "waiting job woken", job_id=job.job_id, stage=waiting["stage"])

    def _send_callback(self, job: Job, report: CleanupReport) -> None:
        """A finished job whose callback its worker did not get to send (the task's name makes a repeat harmless)."""
        if job.state in TERMINAL:
            self.callbacks.fire(job, job.state)
            report.requeued += 1

    def _requeue(self, job: Job, report: CleanupReport, code: str, message: str) -> None:
        error = ClassifiedError(code, message, True, job.current_stage, job.attempts, utcnow()).to_dict()
        generation = job.generation + 1
        self.store.update(job, {
            "lease_owner": DELETE, RENEWED: DELETE, "lease_ttl": DELETE, "generation": generation,
            "errors": with_error(job.errors, error),
            "task_name": self.queue.name_for(job.job_id, generation, job.incarnation, queue=self.queue.queue_of(job)),
        }, JobState.QUEUED)
        # After the fenced write: a second cleanup run lost the race above and never gets here.
        self.queue.enqueue(job.job_id, generation, job.incarnation, queue=self.queue.queue_of(job),
                           trace_id=job.trace_id)
        report.requeued += 1
        event = Event.LEASE_LAPSED if code == "TIMEOUT" else Event.TASK_LOST
        with bound(trace=trace_resource(job.trace_id, self.settings.project_id)):  # a line of the job's own trace
            log(LOG, logging.WARNING, "job re-enqueued", job_id=job.job_id, job_type=job.job_type,
                generation=generation, code=code, event=event)

    def _purge(self, job: Job, report: CleanupReport) -> None:
        # The document first, fenced on the version the query read: a job retried since is not touched. Then the
        # objects its checkpoints name (a finished job keeps no others), without listing the bucket. Objects of a
        # purge that died in between are the bucket lifecycle rule's to remove.
        self.store.delete_job(job)
        JobArtifacts(self.bucket, job.job_id).delete_named(job.checkpoints)
        report.purged += 1
        log(LOG, logging.INFO, "expired job purged", job_id=job.job_id)
