"""The Firestore adapter: every read, write and query the product makes on `jobs`, `results`, `failed_tasks`.

Writes to a job are fenced on the document's `update_time` (a `current_document` precondition), which costs no
extra round trip: a write succeeds only if nobody wrote the job since we read (or last wrote) it. That is a
stricter fence than comparing the lease's token, so a zombie worker, a second cleanup run or a concurrent cancel
can never be overwritten silently; the loser gets `StaleWrite` and re-reads.

Every query's shape is declared in `QUERY_SHAPES` (equality fields first, then range/order fields) so the
infrastructure's test can check each has its composite index in firestore.indexes.json.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from .errors import OncetaskError
from .job import FAILED_TASKS, JOBS, RESULTS, Job
from .policy import transient_retry
from .states import JobState, transition

# (collection, ((field, direction), ...)): equality fields first, then range/order fields.
QUERY_SHAPES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    # API listing: a caller's jobs, newest first, optionally of one state.
    (JOBS, (("owner", "ASCENDING"), ("created_at", "DESCENDING"))),
    (JOBS, (("owner", "ASCENDING"), ("state", "ASCENDING"), ("created_at", "DESCENDING"))),
    # Cleanup: leases that lapsed (single field: no composite index needed).
    (JOBS, (("lease_expires_at", "ASCENDING"),)),
    # Cleanup: queued/retrying jobs untouched for longer than the grace period (their task may be gone).
    (JOBS, (("state", "ASCENDING"), ("updated_at", "ASCENDING"))),
    # Cleanup: anything past its retention (single field, also the TTL policy's field).
    (JOBS, (("expire_at", "ASCENDING"),)),
)


# Bound every call: the client's default retry would otherwise keep a request (and a Cloud Tasks attempt) waiting
# for minutes on a misbehaving backend.
CALL_TIMEOUT = 20.0


class StaleWrite(OncetaskError):
    """The job changed since it was read (or was deleted): the fenced write was refused."""

    code = "STALE_WRITE"


def field(*parts: str) -> str:
    """A field path for update(): stage names may contain dots, which must not split the path."""
    return FieldPath(*parts).to_api_repr()


class JobStore:
    def __init__(self, client: firestore.Client) -> None:
        self.client = client

    def ref(self, job_id: str, collection: str = JOBS) -> firestore.DocumentReference:
        return self.client.collection(collection).document(job_id)

    # Reads -------------------------------------------------------------------------------------------------

    @transient_retry()
    def get(self, job_id: str) -> Job | None:
        snapshot = self.ref(job_id).get(timeout=CALL_TIMEOUT)
        return self._job(snapshot) if snapshot.exists else None

    @transient_retry()
    def get_doc(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        snapshot = self.ref(doc_id, collection).get(timeout=CALL_TIMEOUT)
        return snapshot.to_dict() if snapshot.exists else None

    @staticmethod
    def _job(snapshot: firestore.DocumentSnapshot) -> Job:
        return Job.from_dict(snapshot.id, snapshot.to_dict() or {}, snapshot.update_time)

    # Writes ------------------------------------------------------------------------------------------------

    @transient_retry()
    def create(self, job_id: str, data: dict[str, Any]) -> datetime:
        """Create the job document (exists=false precondition): `gexc.AlreadyExists` if it is there already."""
        return self.ref(job_id).create(data, timeout=CALL_TIMEOUT).update_time

    def update(self, job: Job, changes: dict[str, Any], to: JobState | None = None) -> Job:
        """One fenced write of `changes` (moving to state `to` if given, through the transition table)."""
        return self.commit(job, changes, to)

    def commit(self, job: Job, changes: dict[str, Any], to: JobState | None = None,
               creates: tuple[tuple[str, dict[str, Any]], ...] = (),
               sets: tuple[tuple[str, dict[str, Any]], ...] = (),
               deletes: tuple[str, ...] = ()) -> Job:
        """Atomically: a fenced update of the job, plus creates/sets/deletes of `{collection}/{job_id}` documents
        (e.g. completion and its result record: no completed job without its result, no result twice).
        Returns the job as written (with its new update_time), or raises `StaleWrite`."""
        changes = dict(changes)
        if to is not None:
            changes["state"] = transition(job.state, to).value
        changes.setdefault("updated_at", utcnow())
        if to is not None and JobState(to) is not job.state:
            changes.setdefault("state_changed_at", changes["updated_at"])  # "time in state" for the status page
        batch = self.client.batch()
        batch.update(self.ref(job.job_id), changes, option=self.client.write_option(last_update_time=job.update_time))
        for collection, data in creates:
            batch.create(self.ref(job.job_id, collection), data)
        for collection, data in sets:
            batch.set(self.ref(job.job_id, collection), data)
        for collection in deletes:
            batch.delete(self.ref(job.job_id, collection))
        try:
            results = _commit(batch)
        except (gexc.FailedPrecondition, gexc.NotFound) as exc:
            raise StaleWrite(message=f"job {job.job_id} changed since it was read: {exc.message}") from exc
        except gexc.AlreadyExists as exc:  # a result record exists: someone completed the job before us
            raise StaleWrite(message=f"job {job.job_id}: {exc.message}") from exc
        return _apply(job, changes, results[0].update_time)

    @transient_retry()
    def delete_job(self, job_id: str) -> None:
        batch = self.client.batch()
        for collection in (JOBS, RESULTS, FAILED_TASKS):
            batch.delete(self.ref(job_id, collection))
        batch.commit(timeout=CALL_TIMEOUT)

    # Queries -----------------------------------------------------------------------------------------------

    def list_jobs(self, owner: str, state: JobState | None, limit: int, after_id: str | None) -> list[Job]:
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("owner", "==", owner))
        if state is not None:
            query = query.where(filter=firestore.FieldFilter("state", "==", state.value))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
        if after_id:
            cursor = self.ref(after_id).get(timeout=CALL_TIMEOUT)
            if cursor.exists:
                query = query.start_after(cursor)
        return [self._job(s) for s in query.limit(limit).stream(timeout=CALL_TIMEOUT)]

    def lapsed_leases(self, now: datetime, page_size: int = 100) -> Iterator[Job]:
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("lease_expires_at", "<", now))
        yield from self._pages(query.order_by("lease_expires_at"), page_size)

    def untouched_waiting(self, cutoff: datetime, page_size: int = 100) -> Iterator[Job]:
        """Queued or retrying jobs not written since `cutoff`: candidates for a lost task."""
        query = self.client.collection(JOBS).where(
            filter=firestore.FieldFilter("state", "in", [JobState.QUEUED.value, JobState.RETRYING.value]))
        query = query.where(filter=firestore.FieldFilter("updated_at", "<", cutoff))
        yield from self._pages(query.order_by("updated_at"), page_size)

    def expired(self, now: datetime, page_size: int = 100) -> Iterator[Job]:
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("expire_at", "<", now))
        yield from self._pages(query.order_by("expire_at"), page_size)

    def _pages(self, query: firestore.Query, page_size: int) -> Iterator[Job]:
        """Every match, page by page (a cursor after the last document), not only the first page."""
        last: firestore.DocumentSnapshot | None = None
        while True:
            page_query = query.limit(page_size) if last is None else query.start_after(last).limit(page_size)
            page = list(page_query.stream(timeout=CALL_TIMEOUT))
            for snapshot in page:
                yield self._job(snapshot)
            if len(page) < page_size:
                return
            last = page[-1]


@transient_retry()
def _commit(batch: firestore.WriteBatch) -> list[Any]:
    return batch.commit(timeout=CALL_TIMEOUT)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _apply(job: Job, changes: dict[str, Any], update_time: datetime) -> Job:
    """The job as it is after a successful write of `changes` (no re-read: it costs a round trip)."""
    data: dict[str, Any] = {}
    checkpoints = dict(job.checkpoints)
    for key, value in changes.items():
        if key.startswith("checkpoints."):
            stage = FieldPath.from_string(key).parts[1]
            checkpoints[stage] = value
            continue
        if key == "checkpoints":
            checkpoints = dict(value)
            continue
        if key in Job.__dataclass_fields__:
            data[key] = None if value is firestore.DELETE_FIELD else value
    if "state" in data:
        data["state"] = JobState(data["state"])
    return replace(job, **data, checkpoints=checkpoints, update_time=update_time)
