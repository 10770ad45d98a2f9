"""The framework job types plug into: a job type is a payload model plus an ordered tuple of named stages.

A stage gets a `StageContext`, does its work, writes its artifacts through `ctx.artifacts` (deterministic object
names, so a rerun overwrites rather than duplicates), and returns a JSON-able `StageOutput` that is stored as the
stage's checkpoint. A rerun skips a stage whose checkpoint exists and whose artifacts (the `gs://` URIs found in
its output) still exist. Call `ctx.check()` between long steps: it raises `LeaseLost` or `Cancelled` when the
worker must stop; `ctx.artifacts.write` checks it too, before every write.

Stages raise `errors.PermanentError` for bad input and `errors.RetryableError` for transient trouble; any other
exception is classified by `errors.classify`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
from google.cloud import firestore

from .artifacts import ArtifactStore

StageOutput = dict[str, Any]  # JSON-able summary of a stage, including the artifact URIs it wrote


@dataclass(frozen=True)
class StageContext:
    """What a stage gets: the job, its validated payload, earlier stages' outputs, artifacts and Firestore."""

    job_id: str
    payload: pydantic.BaseModel
    stage: str
    attempt: int  # 1 on the job's first run; +1 per lease acquisition (a manual retry continues the count)
    outputs_so_far: dict[str, StageOutput]
    artifacts: ArtifactStore
    firestore: firestore.Client
    check_fn: Callable[[], None] = field(default=lambda: None, repr=False)

    def check(self) -> None:
        """Raise `LeaseLost` or `Cancelled` if this worker must stop; cheap (no network), call it often."""
        self.check_fn()


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[StageContext], StageOutput]


@dataclass(frozen=True)
class JobType:
    name: str
    payload_model: type[pydantic.BaseModel]
    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        names = [stage.name for stage in self.stages]
        if not names:
            raise ValueError(f"job type {self.name!r} has no stages")
        if len(set(names)) != len(names):
            raise ValueError(f"job type {self.name!r} has duplicate stage names: {names}")
        for name in names:
            if not name or "/" in name:
                raise ValueError(f"job type {self.name!r}: stage name {name!r} must be non-empty without '/'")

    def stage_names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    def validate(self, payload: object) -> pydantic.BaseModel:
        """The payload as the job type's model (raises pydantic.ValidationError naming the bad field).

        Strict: a payload is JSON, and the documented schema says `false`, not `0`, and `5`, not `"5"`; a value
        of the wrong type is refused by name rather than quietly converted."""
        return self.payload_model.model_validate(payload, strict=True)


def artifact_uris(output: StageOutput) -> list[str]:
    """Every `gs://` URI found anywhere in a stage's output: the artifacts whose existence a skip requires."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str) and value.startswith("gs://"):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(output)
    return found
