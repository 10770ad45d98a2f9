"""The Firestore adapter: every read, write and query the product makes on `jobs`, `results`, `failed_tasks`.

Writes to a job are fenced on the document's `update_time` (a `current_document` precondition), which costs no
extra round trip: a write succeeds only if nobody wrote the job since we read (or last wrote) it. That is a
stricter fence than comparing the lease's token, so a zombie worker, a second cleanup run or a concurrent cancel
can never be overwritten silently; the loser gets `StaleWrite` and re-reads. Deleting a job is fenced the same
way, and a lease holder's writes to other collections can carry the same fence (`commit_fenced`).

Times that decide anything (`updated_at`, `lease_renewed_at`) are Firestore's commit times (server timestamps),
compared with the `read_time` of a read, never with this machine's clock.

Every query's shape is declared in `QUERY_SHAPES` (equality fields first, then range/order fields) so the
infrastructure's test can check each has its composite index in firestore.indexes.json.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath

from .errors import OncetaskError
from .job import CHILDREN, FAILED_TASKS, JOBS, RESULTS, Job
from .policy import transient_retry
from .states import JobState, transition

# (collection, ((field, direction), ...)): equality fields first, then range/order fields.
QUERY_SHAPES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    # API listing: a caller's jobs, newest first, optionally of one state.
    (JOBS, (("owner", "ASCENDING"), ("created_at", "DESCENDING"))),
    (JOBS, (("owner", "ASCENDING"), ("state", "ASCENDING"), ("created_at", "DESCENDING"))),
    # ... of one job type (the status page's filter), optionally of one state too.
    (JOBS, (("owner", "ASCENDING"), ("job_type", "ASCENDING"), ("created_at", "DESCENDING"))),
    (JOBS, (("owner", "ASCENDING"), ("job_type", "ASCENDING"), ("state", "ASCENDING"), ("created_at", "DESCENDING"))),
    # Operators' listing: every job, newest first (single field), optionally of one state and/or one job type.
    (JOBS, (("created_at", "DESCENDING"),)),
    (JOBS, (("state", "ASCENDING"), ("created_at", "DESCENDING"))),
    (JOBS, (("job_type", "ASCENDING"), ("created_at", "DESCENDING"))),
    (JOBS, (("job_type", "ASCENDING"), ("state", "ASCENDING"), ("created_at", "DESCENDING"))),
    # Quotas: an owner's active jobs (a count).
    (JOBS, (("owner", "ASCENDING"), ("state", "ASCENDING"))),
    # Cleanup: leases not renewed since a cutoff (single field: no composite index needed).
    (JOBS, (("lease_renewed_at", "ASCENDING"),)),
    # Cleanup: queued/retrying jobs untouched for longer than the grace period (their task may be gone).
    (JOBS, (("state", "ASCENDING"), ("updated_at", "ASCENDING"))),
    # Cleanup: anything past its retention (single field, also the TTL policy's field).
    (JOBS, (("expire_at", "ASCENDING"),)),
    # Cleanup: waiting parents untouched for a while (state == waiting: the same index as the one above it).
    # Cleanup: scheduled jobs whose time has passed.
    (JOBS, (("state", "ASCENDING"), ("run_at", "ASCENDING"))),
    # Cleanup: callbacks a terminal commit asked for and nobody enqueued.
    (JOBS, (("callback_pending", "ASCENDING"), ("updated_at", "ASCENDING"))),
    # A parent's children of one stage, in order (jobs/{parent}/children).
    (CHILDREN, (("stage", "ASCENDING"), ("index", "ASCENDING"))),
    # Prompt cancel: each task handler process listens to the running jobs whose cancel was asked.
    (JOBS, (("cancel_requested", "ASCENDING"), ("state", "ASCENDING"))),
    # Stats (count aggregations): jobs per state (single field), per job type and state; lapsed leases (the
    # cleanup's shape above); dead letters since a time (single field).
    (JOBS, (("state", "ASCENDING"),)),
    (JOBS, (("job_type", "ASCENDING"),)),
    (JOBS, (("job_type", "ASCENDING"), ("state", "ASCENDING"))),
    (FAILED_TASKS, (("failed_at", "ASCENDING"),)),
    # Stats: the latest finished jobs (durations), and finished jobs per time bucket (the timeline).
    (JOBS, (("state", "ASCENDING"), ("state_changed_at", "DESCENDING"))),
)


ACTIVE_STATES = ["queued", "scheduled", "running", "waiting", "retrying"]
FINISHED_STATES = ["completed", "failed"]
# What the stats read of a finished job: enough for its duration, not its payload or outputs.
DURATION_FIELDS = ["job_type", "state", "created_at", "started_at", "state_changed_at"]
FENCED_BATCH = 499  # writes per commit, less the one that fences it
CLOCK = "_oncetask_clock"  # a collection never written: reading its (missing) document tells the server's time
Write = Callable[[firestore.WriteBatch], None]  # adds one write to a batch

# Bound every call: the client's own retry (turned off with retry=None) would keep a request, a lease holder's write
# or a Cloud Tasks attempt waiting for a minute on a misbehaving backend; `transient_retry` retries instead, a few
# times within seconds.
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
        snapshot = self.ref(job_id).get(retry=None, timeout=CALL_TIMEOUT)
        return self._job(snapshot) if snapshot.exists else None

    @transient_retry()
    def server_time(self) -> datetime:
        """Firestore's current time: the read time of a (missing) document's read. Costs one read."""
        snapshot = self.client.collection(CLOCK).document("now").get(retry=None, timeout=CALL_TIMEOUT)
        return snapshot.read_time

    @transient_retry()
    def get_doc(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        snapshot = self.ref(doc_id, collection).get(retry=None, timeout=CALL_TIMEOUT)
        return snapshot.to_dict() if snapshot.exists else None

    @staticmethod
    def _job(snapshot: firestore.DocumentSnapshot) -> Job:
        return Job.from_dict(snapshot.id, snapshot.to_dict() or {}, snapshot.update_time, snapshot.read_time)

    # Writes ------------------------------------------------------------------------------------------------

    @transient_retry()
    def create(self, job_id: str, data: dict[str, Any]) -> datetime:
        """Create the job document (exists=false precondition): `gexc.AlreadyExists` if it is there already.

        In the same commit, remove what an earlier incarnation of this job ID may have left: Firestore's TTL deletes
        `jobs`, `results` and `failed_tasks` documents independently, and a stale result would otherwise stand for
        the new job. If the job exists the whole commit fails, so nothing of a live job is touched."""
        batch = self.client.batch()
        batch.create(self.ref(job_id), data)
        for collection in (RESULTS, FAILED_TASKS):
            batch.delete(self.ref(job_id, collection))
        return _commit(batch)[0].update_time

    def update(self, job: Job, changes: dict[str, Any], to: JobState | None = None) -> Job:
        """One fenced write of `changes` (moving to state `to` if given, through the transition table)."""
        return self.commit(job, changes, to)

    def commit(self, job: Job, changes: dict[str, Any], to: JobState | None = None,
               creates: tuple[tuple[str, dict[str, Any]], ...] = (),
               sets: tuple[tuple[str, dict[str, Any]], ...] = (),
               deletes: tuple[str, ...] = (), writes: tuple[Write, ...] = ()) -> Job:
        """Atomically: a fenced update of the job, plus creates/sets/deletes of `{collection}/{job_id}` documents
        (e.g. completion and its result record: no completed job without its result, no result twice) and any
        other `writes` (a child's outcome on its parent, a follow-up job). Returns the job as written (with its new
        update_time), or raises `StaleWrite`."""
        changes = dict(changes)
        if to is not None:
            changes["state"] = transition(job.state, to).value
        changes.setdefault("updated_at", firestore.SERVER_TIMESTAMP)
        if to is not None and JobState(to) is not job.state:
            changes.setdefault("state_changed_at", firestore.SERVER_TIMESTAMP)  # "time in state" for the status page
        batch = self.client.batch()
        batch.update(self.ref(job.job_id), changes, option=self.client.write_option(last_update_time=job.update_time))
        for collection, data in creates:
            batch.create(self.ref(job.job_id, collection), data)
        for collection, data in sets:
            batch.set(self.ref(job.job_id, collection), data)
        for collection in deletes:
            batch.delete(self.ref(job.job_id, collection))
        for write in writes:
            write(batch)
        try:
            results = _commit(batch)
        except (gexc.FailedPrecondition, gexc.NotFound) as exc:
            raise StaleWrite(message=f"job {job.job_id} changed since it was read: {exc.message}") from exc
        except gexc.AlreadyExists as exc:  # a record this commit creates exists: someone ended the job before us
            raise StaleWrite(message=f"job {job.job_id}: {exc.message}") from exc
        return _apply(job, changes, results[0].update_time)

    def commit_fenced(self, job: Job, writes: list[Write]) -> None:
        """Commit `writes` (to any documents) only if the job is still at `job.update_time`: the batch carries a
        no-op update of the job fenced on that version, so a worker whose lease was taken (or whose job was
        cancelled or changed) since cannot land them. A write that changes nothing keeps the document's update_time,
        so the fence costs no write to the (hot) job document. `StaleWrite` if the job moved on."""
        batch = self.client.batch()
        batch.update(self.ref(job.job_id), {"fencing": job.fencing},
                     option=self.client.write_option(last_update_time=job.update_time))
        for write in writes:
            write(batch)
        try:
            _commit(batch)
        except (gexc.FailedPrecondition, gexc.NotFound) as exc:
            raise StaleWrite(message=f"job {job.job_id} changed since it was read: {exc.message}") from exc

    # Child jobs -------------------------------------------------------------------------------------------

    def outcome_ref(self, parent_id: str, child_id: str) -> firestore.DocumentReference:
        return self.ref(parent_id).collection(CHILDREN).document(child_id)

    def create_children(self, commit: Callable[[list[Write]], None],
                        children: list[tuple[str, dict[str, Any]]]) -> None:
        """Create the child job documents that do not exist yet, through `commit`: the parent's lease holder's
        fenced commit, so a parent worker that lost its lease starts no child. A rerun of the stage finds them
        existing: nothing is created twice."""
        for start in range(0, len(children), FENCED_BATCH):
            chunk = children[start:start + FENCED_BATCH]
            try:
                commit([_creator(self.ref(child_id), data) for child_id, data in chunk])
            except gexc.AlreadyExists:
                existing = {s.id for s in self.client.get_all([self.ref(c) for c, _ in chunk], field_paths=[],
                                                               retry=None, timeout=CALL_TIMEOUT) if s.exists}
                missing = [_creator(self.ref(c), d) for c, d in chunk if c not in existing]
                if missing:
                    commit(missing)

    @transient_retry()
    def children_ended(self, parent_id: str, stage: str) -> int:
        """How many children started by `stage` have ended (a count aggregation)."""
        outcomes = self.ref(parent_id).collection(CHILDREN).where(
            filter=firestore.FieldFilter("stage", "==", stage))
        return int(outcomes.count().get(retry=None, timeout=CALL_TIMEOUT)[0][0].value)

    @transient_retry()
    def children_done(self, parent_id: str, stage: str) -> tuple[int, bool]:
        """How many children started by `stage` have ended, and whether one of them failed or was cancelled."""
        outcomes = self.ref(parent_id).collection(CHILDREN).where(
            filter=firestore.FieldFilter("stage", "==", stage))
        failed = outcomes.where(filter=firestore.FieldFilter("state", "in", ["failed", "cancelled"])).limit(1)
        return self.children_ended(parent_id, stage), bool(list(failed.stream(retry=None, timeout=CALL_TIMEOUT)))

    def children_outcomes(self, parent_id: str, stage: str, limit: int | None = None) -> list[dict[str, Any]]:
        """How the ended children of `stage` ended, in order (the first `limit` of them, if given)."""
        query = self.ref(parent_id).collection(CHILDREN).where(
            filter=firestore.FieldFilter("stage", "==", stage)).order_by("index")
        if limit is not None:
            query = query.limit(limit)
        return [s.to_dict() or {} for s in query.stream(retry=None, timeout=CALL_TIMEOUT)]

    def request_cancel(self, job_ids: list[str]) -> None:
        """Ask each of these jobs to stop (independent writes, as many at once as Firestore takes): a running one
        stops at its worker's next check, a waiting one is closed by its next delivery."""
        if not job_ids:
            return
        writer = self.client.bulk_writer()
        writer.on_write_error(lambda error: False)  # a job that does not exist (any more) has nothing to stop
        for job_id in job_ids:
            writer.update(self.ref(job_id), {"cancel_requested": True})  # an update needs the document to exist
        writer.close()

    def delete_job(self, job: Job) -> None:
        """Delete the job with its result and dead letter, only if it is still the version `job` was read at (a
        retry accepted since must not be lost): `StaleWrite` otherwise."""
        batch = self.client.batch()
        batch.delete(self.ref(job.job_id), option=self.client.write_option(last_update_time=job.update_time))
        for collection in (RESULTS, FAILED_TASKS):
            batch.delete(self.ref(job.job_id, collection))
        try:
            _commit(batch)
        except (gexc.FailedPrecondition, gexc.NotFound) as exc:
            raise StaleWrite(message=f"job {job.job_id} changed since it was read: {exc.message}") from exc

    # Queries -----------------------------------------------------------------------------------------------

    @transient_retry()
    def active_jobs(self, owner: str) -> int:
        """How many of `owner`'s jobs are queued, scheduled, running, waiting or retrying (a count aggregation)."""
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("owner", "==", owner)).where(
            filter=firestore.FieldFilter("state", "in", ACTIVE_STATES))
        return int(query.count().get(retry=None, timeout=CALL_TIMEOUT)[0][0].value)

    def list_jobs(self, owner: str, state: JobState | None, limit: int, after_id: str | None,
                  job_type: str | None = None) -> list[Job]:
        """A page of `owner`'s jobs, newest first (after the job `after_id`, a previous page's last)."""
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("owner", "==", owner))
        return self._page_of(query, state, limit, after_id, job_type)

    def list_all_jobs(self, state: JobState | None, limit: int, after_id: str | None,
                      job_type: str | None = None) -> list[Job]:
        """A page of everyone's jobs, newest first: what an operator lists."""
        return self._page_of(self.client.collection(JOBS), state, limit, after_id, job_type)

    def _page_of(self, query: firestore.Query, state: JobState | None, limit: int, after_id: str | None,
                 job_type: str | None) -> list[Job]:
        if job_type is not None:
            query = query.where(filter=firestore.FieldFilter("job_type", "==", job_type))
        if state is not None:
            query = query.where(filter=firestore.FieldFilter("state", "==", state.value))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
        if after_id:
            cursor = self.ref(after_id).get(retry=None, timeout=CALL_TIMEOUT)
            if cursor.exists:
                query = query.start_after(cursor)
        return [self._job(s) for s in query.limit(limit).stream(retry=None, timeout=CALL_TIMEOUT)]

    def unrenewed_leases(self, cutoff: datetime, page_size: int = 100) -> Iterator[Job]:
        """Jobs whose lease holder has not written since `cutoff` (server time): candidates for a lapsed lease."""
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("lease_renewed_at", "<", cutoff))
        yield from self._pages(query.order_by("lease_renewed_at"), page_size)

    def untouched_waiting(self, cutoff: datetime, page_size: int = 100) -> Iterator[Job]:
        """Queued or retrying jobs not written since `cutoff`: candidates for a lost task."""
        query = self.client.collection(JOBS).where(
            filter=firestore.FieldFilter("state", "in", [JobState.QUEUED.value, JobState.RETRYING.value]))
        query = query.where(filter=firestore.FieldFilter("updated_at", "<", cutoff))
        yield from self._pages(query.order_by("updated_at"), page_size)

    def waiting_untouched(self, cutoff: datetime, page_size: int = 100) -> Iterator[Job]:
        """Jobs waiting for their children, not written since `cutoff`: their wake may have been lost."""
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("state", "==", "waiting"))
        query = query.where(filter=firestore.FieldFilter("updated_at", "<", cutoff))
        yield from self._pages(query.order_by("updated_at"), page_size)

    def scheduled_overdue(self, cutoff: datetime, page_size: int = 100) -> Iterator[Job]:
        """Scheduled jobs whose time passed before `cutoff`: their task should have run by now."""
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("state", "==", "scheduled"))
        query = query.where(filter=firestore.FieldFilter("run_at", "<", cutoff))
        yield from self._pages(query.order_by("run_at"), page_size)

    def callbacks_pending(self, cutoff: datetime, page_size: int = 100) -> Iterator[Job]:
        """Finished jobs whose callback was asked for by their terminal commit and not enqueued since."""
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("callback_pending", "==", True))
        query = query.where(filter=firestore.FieldFilter("updated_at", "<", cutoff))
        yield from self._pages(query.order_by("updated_at"), page_size)

    def expired(self, now: datetime, page_size: int = 100) -> Iterator[Job]:
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("expire_at", "<", now))
        yield from self._pages(query.order_by("expire_at"), page_size)

    # Stats: count aggregations (billed one read per 1,000 index entries matched, at least one per query) and one
    # bounded projection query -------------------------------------------------------------------------------

    @transient_retry()
    def count_in_state(self, state: str) -> int:
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("state", "==", state))
        return _count(query)

    @transient_retry()
    def count_of_type(self, job_type: str, states: list[str] | None = None) -> int:
        """Jobs of `job_type` (in one of `states`, if given)."""
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("job_type", "==", job_type))
        if states is not None:
            query = query.where(filter=firestore.FieldFilter("state", "in", states))
        return _count(query)

    @transient_retry()
    def count_unrenewed_leases(self, cutoff: datetime) -> int:
        """Running jobs whose holder has not written since `cutoff`: stuck, until a delivery or the cleanup acts."""
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("lease_renewed_at", "<", cutoff))
        return _count(query)

    @transient_retry()
    def count_dead_letters(self, since: datetime) -> int:
        query = self.client.collection(FAILED_TASKS).where(filter=firestore.FieldFilter("failed_at", ">=", since))
        return _count(query)

    @transient_retry()
    def count_finished(self, state: str, start: datetime, end: datetime) -> int:
        """Jobs that entered `state` (completed or failed) in [start, end)."""
        query = self.client.collection(JOBS).where(filter=firestore.FieldFilter("state", "==", state)).where(
            filter=firestore.FieldFilter("state_changed_at", ">=", start)).where(
            filter=firestore.FieldFilter("state_changed_at", "<", end)).order_by(
            "state_changed_at", direction=firestore.Query.DESCENDING)
        return _count(query)

    @transient_retry()
    def recent_finished(self, since: datetime, limit: int) -> list[dict[str, Any]]:
        """The latest jobs (at most `limit`) that completed or failed since `since`, newest first: only the fields
        a duration needs (one read each)."""
        query = self.client.collection(JOBS).where(
            filter=firestore.FieldFilter("state", "in", FINISHED_STATES)).where(
            filter=firestore.FieldFilter("state_changed_at", ">=", since)).order_by(
            "state_changed_at", direction=firestore.Query.DESCENDING).select(DURATION_FIELDS).limit(limit)
        return [s.to_dict() or {} for s in query.stream(retry=None, timeout=CALL_TIMEOUT)]

    def listen_cancel_requests(self, callback: Callable[[list[Any], list[Any], Any], None]) -> Any:
        """A listener (the client's `Watch`) on the running jobs whose cancel was asked: `callback(documents,
        changes, read_time)` on each snapshot, from the listener's own thread (`cancelwatch.py`)."""
        query = self.client.collection(JOBS).where(
            filter=firestore.FieldFilter("cancel_requested", "==", True)).where(
            filter=firestore.FieldFilter("state", "==", JobState.RUNNING.value))
        return query.on_snapshot(callback)

    def _pages(self, query: firestore.Query, page_size: int) -> Iterator[Job]:
        """Every match, page by page (a cursor after the last document), not only the first page."""
        last: firestore.DocumentSnapshot | None = None
        while True:
            page_query = query.limit(page_size) if last is None else query.start_after(last).limit(page_size)
            page = list(page_query.stream(retry=None, timeout=CALL_TIMEOUT))
            for snapshot in page:
                yield self._job(snapshot)
            if len(page) < page_size:
                return
            last = page[-1]


def _count(query: firestore.Query) -> int:
    return int(query.count().get(retry=None, timeout=CALL_TIMEOUT)[0][0].value)


def _creator(ref: firestore.DocumentReference, data: dict[str, Any]) -> Write:
    return lambda batch: batch.create(ref, data)


@transient_retry()
def _commit(batch: firestore.WriteBatch) -> list[Any]:
    return batch.commit(retry=None, timeout=CALL_TIMEOUT)


def _apply(job: Job, changes: dict[str, Any], update_time: datetime) -> Job:
    """The job as it is after a successful write of `changes` (no re-read: it costs a round trip). A server
    timestamp becomes the commit's time, which is what Firestore stored."""
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
            if value is firestore.DELETE_FIELD:
                value = None
            elif value is firestore.SERVER_TIMESTAMP:
                value = update_time
            data[key] = value
    if "state" in data:
        data["state"] = JobState(data["state"])
    return replace(job, **data, checkpoints=checkpoints, update_time=update_time)
