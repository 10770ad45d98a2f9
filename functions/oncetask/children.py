"""Child jobs: a stage starts them, each one's terminal commit records its outcome on the parent, the last wakes it.

- **Starting** (`ctx.start_children`): child IDs are a hash of (parent, incarnation, stage, index), and each child's
  incarnation is derived the same way, so a rerun of the stage after a crash creates no second copy and names the
  same tasks (ALREADY_EXISTS). The documents are created through the parent lease holder's fenced commit: a parent
  worker that lost its lease starts nothing.
- **Recording**: a child's terminal commit also writes `jobs/{parent}/children/{child}` (its state, outputs or
  error) in the same commit: no outcome is lost or written twice, and no write touches the parent's own document,
  so hundreds of children ending at once contend on nothing.
- **Waking, exactly once**: the next stage of the parent runs only once every child of the stage before has an
  outcome. The parent, when it finds them unfinished, parks as `waiting`; then it counts again. Each child, after
  its terminal commit, counts; the one that sees the count complete (or, under the `fail` policy, any that failed)
  and finds the parent waiting enqueues the parent's wake-up task. Both sides check *after* their own write, so at
  least one of them sees the last outcome and the parent waiting; the task's name is fixed by the parent's
  generation and the stage, so several of them create one task. The cleanup wakes a waiting parent whose children
  are done if every waker died in between.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pydantic

from .errors import PermanentError
from .job import Job, new_job_data
from .jobstore import JobStore, Write
from .logs import get_logger, log
from .naming import payload_hash
from .settings import Settings
from .stages import JobType
from .states import JobState
from .taskqueue import TaskQueue

LOG = get_logger("children")
POLICIES = ("fail", "collect")  # fail the parent when a child fails for good, or go on with every outcome
ENQUEUE_THREADS = 16


@dataclass(frozen=True)
class ChildOutcome:
    """How one child job ended, as its parent's later stage sees it."""

    job_id: str
    index: int
    job_type: str
    state: str  # completed, failed or cancelled
    outputs: dict[str, Any]  # the child's stage outputs (its result), when it completed
    error: dict[str, Any] | None  # its last error, when it failed


def child_id(parent_id: str, incarnation: str, stage: str, index: int) -> str:
    material = json.dumps(["child", parent_id, incarnation, stage, index], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def child_incarnation(parent_id: str, incarnation: str, stage: str, index: int) -> str:
    material = json.dumps(["incarnation", parent_id, incarnation, stage, index], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:8]


def wake_suffix(stage: str) -> str:
    """The parent's wake-up task for the children of `stage`: one name per generation and stage."""
    return "-w" + hashlib.sha256(stage.encode()).hexdigest()[:8]


def child_ids(parent: Job) -> list[str]:
    """Every child the parent's checkpointed stages started."""
    return [child_id(parent.job_id, parent.incarnation, stage, index)
            for stage, checkpoint in parent.checkpoints.items()
            for index in range(int((checkpoint.get("children") or {}).get("count", 0)))]


class Children:
    def __init__(self, store: JobStore, queue: TaskQueue, settings: Settings, registry: Mapping[str, JobType]) -> None:
        self.store = store
        self.queue = queue
        self.settings = settings
        self.registry = registry

    # The parent's side ---------------------------------------------------------------------------------------

    def start(self, parent: Job, stage: str, job_type_name: str, payloads: list[Any], policy: str,
              commit: Callable[[list[Write]], None]) -> list[str]:
        """Create the children (idempotently, fenced by `commit`) and their tasks; their IDs, in order."""
        if policy not in POLICIES:
            raise PermanentError("INVALID_CHILDREN", f"on_failure must be one of {list(POLICIES)}, not {policy!r}")
        job_type = self.registry.get(job_type_name)
        if job_type is None:
            raise PermanentError("INVALID_CHILDREN", f"stage {stage} starts children of an unknown job type "
                                                     f"{job_type_name!r}; known: {sorted(self.registry)}")
        if not 1 <= len(payloads) <= self.settings.max_children_per_stage:
            raise PermanentError("TOO_MANY_CHILDREN", f"stage {stage} starts {len(payloads)} children; a stage may "
                                                      f"start 1 to {self.settings.max_children_per_stage}")
        if parent.depth + 1 > self.settings.max_child_depth:
            raise PermanentError("CHILD_DEPTH", f"a child of {parent.job_id} would be {parent.depth + 1} levels "
                                                f"deep; at most {self.settings.max_child_depth} are allowed (a cycle "
                                                "of job types starting each other?)")
        documents = []
        for index, payload in enumerate(payloads):
            try:
                model = job_type.validate(payload.model_dump(mode="json") if isinstance(payload, pydantic.BaseModel)
                                          else payload)
            except pydantic.ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "payload"
                raise PermanentError("INVALID_CHILDREN", f"child {index} of stage {stage}: {where}: {first['msg']}") \
                    from exc
            normalized = model.model_dump(mode="json")
            job_id = child_id(parent.job_id, parent.incarnation, stage, index)
            incarnation = child_incarnation(parent.job_id, parent.incarnation, stage, index)
            link = {"job_id": parent.job_id, "incarnation": parent.incarnation, "stage": stage, "index": index,
                    "expected": len(payloads), "policy": policy}
            queue = self.queue.route(job_id, job_type.name)
            documents.append((job_id, new_job_data(
                job_type.name, normalized, payload_hash(job_type.name, normalized), parent.owner,
                f"{parent.job_id}:{stage}:{index}", incarnation,
                self.queue.name_for(job_id, 1, incarnation, queue=queue), queue=queue,
                lane=self.queue.router.lane_of(job_type.name), parent=link, depth=parent.depth + 1,
                trace_id=parent.trace_id)))
        self.store.create_children(commit, documents)
        with ThreadPoolExecutor(max_workers=min(ENQUEUE_THREADS, len(documents))) as pool:
            list(pool.map(lambda doc: self.queue.enqueue(doc[0], 1, doc[1]["incarnation"], queue=doc[1]["queue"],
                                                         trace_id=parent.trace_id),
                          documents))
        log(LOG, logging.INFO, "children started", stage=stage, count=len(documents), child_type=job_type.name)
        return [job_id for job_id, _ in documents]

    def joined(self, parent_id: str, stage: str, join: Mapping[str, Any]) -> tuple[bool, bool]:
        """(every child of `stage` has ended, one of them failed or was cancelled)."""
        count, failed = self.store.children_done(parent_id, stage)
        return count >= int(join.get("count", 0)), failed

    def outcomes(self, parent_id: str, stage: str) -> list[ChildOutcome]:
        return [ChildOutcome(o.get("job_id", ""), int(o.get("index", 0)), o.get("job_type", ""), o.get("state", ""),
                             dict(o.get("outputs") or {}), o.get("error"))
                for o in self.store.children_outcomes(parent_id, stage)]

    def wake(self, parent: Job, stage: str) -> None:
        self.queue.enqueue(parent.job_id, parent.generation, parent.incarnation, queue=self.queue.queue_of(parent),
                           suffix=wake_suffix(stage), trace_id=parent.trace_id)

    def cancel(self, parent: Job, extra: list[str] = ()) -> None:
        """Ask every child the parent started to stop (those already finished ignore it)."""
        ids = sorted({*child_ids(parent), *extra})
        if ids:
            self.store.request_cancel(ids)
            log(LOG, logging.INFO, "children asked to stop", count=len(ids))

    # The child's side ----------------------------------------------------------------------------------------

    def outcome_write(self, child: Job, state: JobState, outputs: dict[str, Any] | None,
                      error: dict[str, Any] | None) -> Write:
        """The child's outcome on its parent, for the child's terminal commit."""
        assert child.parent is not None
        ref = self.store.outcome_ref(child.parent["job_id"], child.job_id)
        record = {"job_id": child.job_id, "job_type": child.job_type, "stage": child.parent["stage"],
                  "index": child.parent["index"], "state": state.value, "outputs": outputs or {}, "error": error}
        return lambda batch: batch.set(ref, record)

    def notify_parent(self, child: Job, state: JobState) -> None:
        """After the child's terminal commit: wake the parent if this was the last outcome it waits for (or, under
        the `fail` policy, a failure). Best effort: the cleanup wakes a waiting parent whose children are done."""
        link = child.parent
        if not link:
            return
        try:
            # A failure, under `fail`, wakes the parent at once; an ending child otherwise wakes it only when its
            # own outcome completed the count (a failed sibling, if any, has woken it already).
            failure = state is not JobState.COMPLETED and link.get("policy") == "fail"
            if not failure and self.store.children_ended(link["job_id"], link["stage"]) < int(link.get("expected", 0)):
                return
            parent = self.store.get(link["job_id"])
            if parent is not None and parent.state is JobState.WAITING \
                    and (parent.waiting or {}).get("stage") == link["stage"]:
                self.wake(parent, link["stage"])
                log(LOG, logging.INFO, "parent woken", parent=parent.job_id, stage=link["stage"], state=state.value)
        except Exception as exc:  # noqa: BLE001 - the cleanup is the backstop; the child's own work is done
            log(LOG, logging.WARNING, "could not wake the parent", parent=link.get("job_id"), error=str(exc))
