"""What a stage sees and is: a job type is a payload model plus an ordered tuple of named stages.

A stage gets a `Context`, does its work, writes its artifacts through `ctx.artifacts` (under its run's own
prefix; its checkpoint lists them), and returns a JSON-able `StageOutput` that is stored as the stage's checkpoint.
A rerun skips a stage whose checkpoint exists and whose artifacts still exist. Call `ctx.check()` between long
steps: it raises `LeaseLost`, `Cancelled` or `StageTimeout` when the worker must stop; `ctx.artifacts.write`
checks it too, before every write. Writes to your own Firestore collections go through `ctx.batch()`, which
commits only while this worker still holds the job. `ctx.progress(fraction, message)` tells how far it is.

Stages raise `errors.PermanentError` for bad input and `errors.RetryableError` for transient trouble; any other
exception is classified by `errors.classify`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import pydantic
from google.cloud import firestore

from .artifacts import RunArtifacts
from .jobstore import Write

if TYPE_CHECKING:
    from .app import Retry

StageOutput = dict[str, Any]  # JSON-able summary of a stage, including the artifact URIs it wrote
P = TypeVar("P", bound=pydantic.BaseModel)


class FencedBatch:
    """Writes to your own collections that commit only while this worker holds the job's lease (and the job was
    not cancelled): a worker that lost its lease, however late its batch arrives, changes nothing. Up to 499
    writes per batch (one more carries the fence)."""

    MAX_WRITES = 499

    def __init__(self, commit: Callable[[list[Write]], None]) -> None:
        self._commit = commit
        self._writes: list[Write] = []

    def set(self, ref: firestore.DocumentReference, data: dict[str, Any], merge: bool = False) -> FencedBatch:
        return self._add(lambda batch: batch.set(ref, data, merge=merge))

    def create(self, ref: firestore.DocumentReference, data: dict[str, Any]) -> FencedBatch:
        return self._add(lambda batch: batch.create(ref, data))

    def update(self, ref: firestore.DocumentReference, data: dict[str, Any]) -> FencedBatch:
        return self._add(lambda batch: batch.update(ref, data))

    def delete(self, ref: firestore.DocumentReference) -> FencedBatch:
        return self._add(lambda batch: batch.delete(ref))

    def _add(self, write: Write) -> FencedBatch:
        if len(self._writes) >= self.MAX_WRITES:
            raise ValueError(f"a fenced batch holds at most {self.MAX_WRITES} writes")
        self._writes.append(write)
        return self

    def __len__(self) -> int:
        return len(self._writes)

    def commit(self) -> None:
        """Commit every write at once, or none: raises `LeaseLost` or `Cancelled` if this worker must stop."""
        if self._writes:
            self._commit(self._writes)
            self._writes = []


@dataclass(frozen=True)
class Context(Generic[P]):
    """What a stage gets: the job, its validated payload, earlier stages' outputs, artifacts, Firestore, a logger
    bound to the job, and an idempotency key for downstream calls."""

    job_id: str
    payload: P
    stage: str
    attempt: int  # 1 on the job's first run; +1 per lease acquisition (a manual retry continues the count)
    outputs: dict[str, StageOutput]  # the outputs of the stages before this one, by stage name
    artifacts: RunArtifacts
    firestore: firestore.Client
    idempotency_key: str = ""  # the same for every run of this stage of this job: hand it to APIs that honour keys
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("oncetask.jobs"), repr=False)
    check_fn: Callable[[], None] = field(default=lambda: None, repr=False)
    commit_fn: Callable[[list[Write]], None] | None = field(default=None, repr=False)
    runtime: StageRuntime | None = field(default=None, repr=False)
    progress_fn: Callable[[float, str], None] = field(default=lambda fraction, message: None, repr=False)

    def check(self) -> None:
        """Raise `LeaseLost`, `Cancelled` or `StageTimeout` if this worker must stop; cheap (no network)."""
        self.check_fn()

    def progress(self, fraction: float, message: str = "") -> None:
        """Say how far the stage is (`fraction` from 0 to 1, and a short message): the job's view and `oncetask
        status` show it. Cheap to call often: no network; the latest value rides on the lease's next heartbeat
        write, so it costs no write of its own (it shows up within the heartbeat interval)."""
        self.progress_fn(fraction, message)

    def batch(self) -> FencedBatch:
        """A batch of writes to your own collections, fenced on this worker's lease (see `FencedBatch`)."""
        if self.commit_fn is None:
            raise RuntimeError("this context has no lease to fence writes on")
        return FencedBatch(self.commit_fn)

    def start_children(self, job_type: str | Any, payloads: list[Any], *, on_failure: str = "fail") -> list[str]:
        """Start one child job per payload (any job type; a name or its definition); their IDs, in order.

        Idempotent: a rerun of this stage starts no second copy. The next stage runs once every child has ended, and
        sees them with `ctx.children()`; until then the job waits without holding a worker. `on_failure="fail"`
        fails this job (and stops the other children) when one fails for good; `"collect"` goes on with every
        outcome. A stage starts its children in one call."""
        return self._runtime().start_children(self.stage, getattr(job_type, "name", job_type), list(payloads),
                                              on_failure)

    def children(self, stage: str | None = None) -> list[Any]:
        """How the children of `stage` (default: the stage before this one) ended: `ChildOutcome`s, by index."""
        return self._runtime().children(stage)

    def sleep(self, seconds: float | None = None, *, until: datetime | None = None) -> None:
        """Run the next stage no earlier than `seconds` from now (or `until` a time), without holding a worker
        meanwhile: the job shows `scheduled`, and its next stage runs in a later delivery (at most 30 days ahead)."""
        self._runtime().sleep(seconds, until)

    def _runtime(self) -> StageRuntime:
        if self.runtime is None:
            raise RuntimeError("this context runs outside a worker: it cannot start children or sleep")
        return self.runtime


class StageRuntime(Protocol):
    """What the processor gives a stage beyond its inputs (children, sleep); implemented in processor.py."""

    def start_children(self, stage: str, job_type: str, payloads: list[Any], on_failure: str) -> list[str]: ...

    def children(self, stage: str | None) -> list[Any]: ...

    def sleep(self, seconds: float | None, until: datetime | None) -> None: ...


StageFunction = Callable[[Context[Any]], "StageOutput | None"]


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFunction


@dataclass(frozen=True)
class JobType:
    name: str
    payload_model: type[pydantic.BaseModel]
    stages: tuple[Stage, ...]
    stage_timeout_seconds: float | None = None  # None: the deployment's setting
    retry: Retry | None = None  # None: the deployment's settings
    description: str = ""
    delivery: str = "single"  # "single": every stage in one delivery; "per_stage": each stage in its own
    callback: dict[str, Any] | None = None  # a follow-up job type started when a job of this type ends
    lane: str | None = None  # None: the app's default lane

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        if not names:
            raise ValueError(f"job type {self.name!r} has no stages")
        if len(set(names)) != len(names):
            raise ValueError(f"job type {self.name!r} has duplicate stage names: {names}")
        for name in names:
            if not name or "/" in name:
                raise ValueError(f"job type {self.name!r}: stage name {name!r} must be non-empty without '/'")
        if self.stage_timeout_seconds is not None and self.stage_timeout_seconds <= 0:
            raise ValueError(f"job type {self.name!r}: stage_timeout_seconds must be positive")

    def stage_names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    def validate(self, payload: object) -> pydantic.BaseModel:
        """The payload as the job type's model (raises pydantic.ValidationError naming the bad field).

        Strict: a payload is JSON, and the documented schema says `false`, not `0`, and `5`, not `"5"`; a value
        of the wrong type is refused by name rather than quietly converted."""
        return self.payload_model.model_validate(payload, strict=True)
