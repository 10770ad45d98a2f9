"""The invariants every fault scenario ends with, checked by reading Firestore, Storage and the Tasks emulator.

The product promises, whatever went wrong on the way:

- every accepted job ends in exactly one terminal state: completed (with exactly one `results` record), failed
  (with its `failed_tasks` dead letter) or cancelled (with neither);
- no lease is left held;
- no stage's work was done twice to completion: `test.pipeline` with `record_runs` appends a marker per stage
  run that finished its work (job, stage, attempt; attempts and fencing tokens grow together). A run whose lease
  was lost before its checkpoint may leave a marker (at-least-once work), but a stage never runs again once its
  checkpoint is written, one lease never finishes a stage twice, and every checkpoint names a run that happened;
- artifacts and checkpoints agree, whatever the terminal state: every object under `jobs/{id}/` is named by a
  checkpoint, every checkpoint's artifacts exist, and a completed job's result names only existing objects;
- no write of any kind after the job ended: no object created, no stage marker (written through the fenced
  batch, so a worker that lost its lease cannot write one either) committed after the job's terminal commit;
- attempts never exceed the budget, and no job ends failed while it had attempts to spare (unless its last error
  was permanent).

`violations()` is pure (a snapshot in, a list of readable problems out); `Observer` does the reading.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.request import urlopen

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from oncetask.job import FAILED_TASKS, JOBS, RESULTS
from oncetask_dev.testjobs import PIPELINE_STAGES, STAGE_RUNS
from oncetask.artifacts import artifact_uris, checkpoint_uris
from oncetask.states import TERMINAL
from oncetask_dev.stack import LocalStack



@dataclass(frozen=True)
class Snapshot:
    """What the stores hold about a set of jobs, read at one moment."""

    job_ids: frozenset[str]
    jobs: dict[str, dict[str, Any]]
    results: dict[str, dict[str, Any]]
    dead_letters: dict[str, dict[str, Any]]
    runs: list[dict[str, Any]]  # stage_runs markers of these jobs
    # job_id -> {gs:// URI under jobs/{job_id}/: when the object was created}
    objects: dict[str, dict[str, datetime | None]] = field(default_factory=dict)

    def states(self) -> Counter[str]:
        return Counter(str(job.get("state")) for job in self.jobs.values())


def violations(snap: Snapshot, bucket: str, max_attempts: int = -1) -> list[str]:
    """Every broken invariant, one readable line each (empty: all hold). `max_attempts` -1: no budget to check."""
    problems: list[str] = []
    for job_id in sorted(snap.job_ids):
        job = snap.jobs.get(job_id)
        if job is None:
            problems.append(f"{job_id}: accepted but lost (no jobs document)")
            continue
        objects = snap.objects.get(job_id, {})
        runs = [r for r in snap.runs if r.get("job_id") == job_id]
        problems += _terminal_state(job_id, job, snap)
        problems += _lease_released(job_id, job)
        problems += _artifacts_match_checkpoints(job_id, job, set(objects), bucket)
        problems += _result_names_existing_objects(job_id, snap.results.get(job_id), set(objects), bucket)
        problems += _nothing_written_after_the_end(job_id, job, objects, runs)
        problems += _attempts_within_budget(job_id, job, max_attempts)
        problems += _stages_done_once(job_id, job, runs)
    return problems


def _terminal_state(job_id: str, job: dict[str, Any], snap: Snapshot) -> list[str]:
    state = job.get("state")
    has_result, has_dead_letter = job_id in snap.results, job_id in snap.dead_letters
    if state not in {s.value for s in TERMINAL}:
        return [f"{job_id}: not terminal (state {state}, stage {job.get('current_stage')})"]
    expected = {"completed": (True, False), "failed": (False, True), "cancelled": (False, False)}[state]
    if (has_result, has_dead_letter) != expected:
        return [f"{job_id}: {state} with result={has_result}, dead letter={has_dead_letter}; "
                f"expected result={expected[0]}, dead letter={expected[1]}"]
    if state == "completed":
        missing = [s for s in PIPELINE_STAGES if s not in (job.get("checkpoints") or {})]
        if missing and job.get("job_type") == "test.pipeline":
            return [f"{job_id}: completed without checkpoints of {missing}"]
    return []


def _lease_released(job_id: str, job: dict[str, Any]) -> list[str]:
    held = {k: job[k] for k in ("lease_owner", "lease_renewed_at") if job.get(k) is not None}
    return [f"{job_id}: lease still held in state {job.get('state')}: {held}"] if held else []


def _in_bucket(uris: Iterable[str], bucket: str, job_id: str) -> set[str]:
    return {uri for uri in uris if uri.startswith(f"gs://{bucket}/jobs/{job_id}/")}


def _artifacts_match_checkpoints(job_id: str, job: dict[str, Any], objects: set[str], bucket: str) -> list[str]:
    named = _in_bucket((uri for cp in (job.get("checkpoints") or {}).values() for uri in checkpoint_uris(cp)),
                       bucket, job_id)
    problems = []
    if objects - named:
        problems.append(f"{job_id}: artifacts without a checkpoint: {sorted(objects - named)}")
    if named - objects:
        problems.append(f"{job_id}: checkpoints whose artifacts are missing: {sorted(named - objects)}")
    return problems


def _result_names_existing_objects(job_id: str, result: dict[str, Any] | None, objects: set[str],
                                   bucket: str) -> list[str]:
    if result is None:
        return []
    missing = _in_bucket(artifact_uris(result.get("outputs") or {}), bucket, job_id) - objects
    return [f"{job_id}: its result names missing objects: {sorted(missing)}"] if missing else []


def _nothing_written_after_the_end(job_id: str, job: dict[str, Any], objects: dict[str, datetime | None],
                                   runs: list[dict[str, Any]]) -> list[str]:
    ended = job.get("state_changed_at") if job.get("state") in {s.value for s in TERMINAL} else None
    if not isinstance(ended, datetime):
        return []
    late = sorted(uri for uri, created in objects.items() if created is not None and created > ended)
    problems = [f"{job_id}: objects created after the job ended at {ended}: {late}"] if late else []
    late_runs = [(r["stage"], r["attempt"]) for r in runs if isinstance(r.get("at"), datetime) and r["at"] > ended]
    problems += [f"{job_id}: stage markers written after the job ended: {late_runs}"] if late_runs else []
    return problems


def _attempts_within_budget(job_id: str, job: dict[str, Any], max_attempts: int) -> list[str]:
    if max_attempts < 1:
        return []
    used = int(job.get("attempts", 0)) - int(job.get("retry_base", 0))
    problems = [f"{job_id}: {used} attempts used of a budget of {max_attempts}"] if used > max_attempts else []
    errors = job.get("errors") or []
    if job.get("state") == "failed" and used < max_attempts and errors and errors[-1].get("retryable"):
        problems.append(f"{job_id}: failed after {used} of {max_attempts} attempts on a retryable error "
                        f"{errors[-1].get('code')}")
    return problems


def fan_in_violations(parents: dict[str, dict[str, Any]], children: dict[str, dict[str, Any]]) -> list[str]:
    """What breaks the promises of child jobs (`test.fanout`): every child started once, each ended, and a parent's
    stitch ran only after every child had ended, seeing all of them (pure)."""
    problems: list[str] = []
    for parent_id, parent in sorted(parents.items()):
        mine = {cid: c for cid, c in children.items() if (c.get("parent") or {}).get("job_id") == parent_id}
        parts = int((parent.get("payload") or {}).get("parts", 0))
        indexes = sorted(int(c["parent"]["index"]) for c in mine.values())
        if indexes != list(range(parts)):
            problems.append(f"{parent_id}: children by index {indexes}, expected 0..{parts - 1} once each")
        for cid, child in sorted(mine.items()):
            if child.get("state") not in {s.value for s in TERMINAL}:
                problems.append(f"{parent_id}: child {cid} not terminal ({child.get('state')})")
        stitch = (parent.get("checkpoints") or {}).get("stitch")
        if parent.get("state") == "completed":
            if stitch is None:
                problems.append(f"{parent_id}: completed without its stitch")
                continue
            seen = {entry["job_id"]: entry["state"] for entry in stitch["output"]["seen"]}
            if set(seen) != set(mine) or any(state != "completed" for state in seen.values()):
                problems.append(f"{parent_id}: the stitch saw {seen}, not every child completed")
            late = [cid for cid, c in mine.items()
                    if isinstance(c.get("state_changed_at"), datetime) and c["state_changed_at"] > stitch["at"]]
            if late:
                problems.append(f"{parent_id}: the stitch ran before children {late} ended")
    return problems


def _stages_done_once(job_id: str, job: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    problems = []
    per_lease = Counter((r["stage"], r["attempt"]) for r in runs)
    problems += [f"{job_id}: stage {stage} finished {n} times under attempt {attempt}"
                 for (stage, attempt), n in sorted(per_lease.items()) if n > 1]
    problems += [f"{job_id}: stage {r['stage']} ran again under attempt {r['attempt']} although its checkpoint "
                 f"(attempt {r['checkpoint_attempt_at_start']}) existed" for r in runs
                 if r.get("checkpoint_attempt_at_start") is not None]
    for stage, checkpoint in sorted((job.get("checkpoints") or {}).items()):
        attempt = checkpoint.get("attempt")
        attempts = sorted(r["attempt"] for r in runs if r["stage"] == stage)
        if attempt not in attempts:
            problems.append(f"{job_id}: checkpoint of {stage} names attempt {attempt}, which never ran it "
                            f"(runs: {attempts})")
        if any(a > attempt for a in attempts):
            problems.append(f"{job_id}: stage {stage} ran after its checkpoint (attempt {attempt}; runs: {attempts})")
    return problems


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """google-cloud-firestore reads its emulator host from the environment when a client is built: point it at
    this stack for that moment only, so a test process can watch several stacks."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


class Observer:
    """Reads a local stack's stores directly (never through the product's code paths under test)."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        settings = stack.settings()
        self.bucket_name = settings.bucket
        self.max_attempts = settings.max_attempts
        with _environ("FIRESTORE_EMULATOR_HOST", stack.firestore_host):
            self.db = firestore.Client(project=settings.project_id, credentials=AnonymousCredentials())
        self.storage = storage.Client(project=settings.project_id, credentials=AnonymousCredentials(),
                                      client_options={"api_endpoint": stack.storage_host})

    # Reads ---------------------------------------------------------------------------------------------------

    def docs(self, collection: str, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        refs = [self.db.collection(collection).document(i) for i in ids]
        if not refs:
            return {}
        return retrying(lambda: {s.id: s.to_dict() or {} for s in self.db.get_all(refs) if s.exists})

    def job(self, job_id: str) -> dict[str, Any]:
        return self.docs(JOBS, [job_id]).get(job_id, {})

    def runs(self, job_ids: Iterable[str]) -> list[dict[str, Any]]:
        wanted = set(job_ids)
        return retrying(lambda: [d for d in (s.to_dict() for s in self.db.collection(STAGE_RUNS).stream())
                                 if d and d.get("job_id") in wanted])

    def objects(self, job_ids: Iterable[str]) -> dict[str, dict[str, datetime | None]]:
        found: dict[str, dict[str, datetime | None]] = {job_id: {} for job_id in job_ids}
        for blob in self.storage.list_blobs(self.bucket_name, prefix="jobs/"):
            job_id = blob.name.split("/")[1]
            if job_id in found:
                found[job_id][f"gs://{self.bucket_name}/{blob.name}"] = blob.time_created
        return found

    def children_of(self, parent_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The child jobs of these parents (jobs whose parent.job_id is one of them)."""
        wanted = sorted(set(parent_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 30):  # "in" takes at most 30 values
            query = self.db.collection(JOBS).where(
                filter=firestore.FieldFilter("parent.job_id", "in", wanted[start:start + 30]))
            found.update(retrying(lambda q=query: {s.id: s.to_dict() or {} for s in q.stream()}))
        return found

    def snapshot(self, job_ids: Iterable[str]) -> Snapshot:
        ids = frozenset(job_ids)
        return Snapshot(ids, self.docs(JOBS, ids), self.docs(RESULTS, ids), self.docs(FAILED_TASKS, ids),
                        self.runs(ids), self.objects(ids))

    def tasks_stats(self) -> dict[str, Any]:
        return self.stack.tasks_stats()

    def firestore_stats(self) -> dict[str, Any]:
        with urlopen(f"http://{self.stack.firestore_http}/emulator/v1/stats", timeout=5) as response:
            return json.loads(response.read())

    # Waiting and checking ------------------------------------------------------------------------------------

    def wait_terminal(self, job_ids: Iterable[str], timeout: float) -> Snapshot:
        """Poll until every job is terminal with its lease released, or fail naming the ones that are not."""
        ids = frozenset(job_ids)

        def settled() -> bool:
            jobs = self.docs(JOBS, ids)
            return len(jobs) == len(ids) and all(
                j.get("state") in {s.value for s in TERMINAL} and not j.get("lease_owner") for j in jobs.values())

        wait_for(settled, timeout, lambda: f"jobs to finish: {self._unsettled(ids)}")
        return self.snapshot(ids)

    def _unsettled(self, ids: frozenset[str]) -> dict[str, str]:
        jobs = self.docs(JOBS, ids)
        return {i: f"{jobs.get(i, {}).get('state', 'missing')}@{jobs.get(i, {}).get('current_stage')}"
                for i in sorted(ids) if jobs.get(i, {}).get("state") not in {s.value for s in TERMINAL}}

    def assert_invariants(self, job_ids: Iterable[str], timeout: float = 60.0) -> Snapshot:
        """Wait for every job to finish, then fail with every broken invariant listed."""
        snap = self.wait_terminal(job_ids, timeout)
        problems = violations(snap, self.bucket_name, self.max_attempts)
        assert not problems, "invariants broken:\n" + "\n".join(problems)
        return snap


TRANSIENT = (gexc.ServiceUnavailable, gexc.Aborted, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.RetryError)


def retrying(read: Callable[[], Any], attempts: int = 20) -> Any:
    """A read that the emulators' injected faults (or a restart) may fail transiently: try it again."""
    for attempt in range(attempts):
        try:
            return read()
        except TRANSIENT:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def wait_for(condition: Callable[[], bool], timeout: float, what: Callable[[], str] | str,
             interval: float = 0.05) -> None:
    """Poll `condition` until it holds; on timeout fail saying what was awaited (and its state then)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for " + (what() if callable(what) else what))
        time.sleep(interval)
