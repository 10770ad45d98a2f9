"""Running a job type's stages the way the processor does, against the Storage and Firestore emulators."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.cloud import firestore, storage

from oncetask.artifacts import RunArtifacts
from oncetask.jobstore import Write
from catalog import app as catalog
from oncetask.stages import Context, JobType, StageOutput


@dataclass
class JobRun:
    """One job of a job type: stages run in order, each seeing the outputs before it, artifacts in `bucket`."""

    job_type: JobType
    payload: Any
    bucket: storage.Bucket
    db: firestore.Client
    job_id: str = field(default_factory=lambda: f"job-{uuid.uuid4().hex[:12]}")
    outputs: dict[str, StageOutput] = field(default_factory=dict)

    def uri(self, stage: str, name: str, attempt: int = 1) -> str:
        return self.artifacts(stage, attempt=attempt).uri(name)

    def artifacts(self, stage: str, check: Callable[[], None] = lambda: None, attempt: int = 1) -> RunArtifacts:
        """The stage's artifacts as the processor's run number `attempt` writes them (`jobs/{job}/{stage}/{run}/`)."""
        return RunArtifacts(self.bucket, self.job_id, stage, f"{attempt}-0a0a0a0a", check)

    def run(self, stage_name: str, check: Callable[[], None] = lambda: None, attempt: int = 1) -> StageOutput:
        (stage,) = [s for s in self.job_type.stages if s.name == stage_name]
        names = self.job_type.stage_names()
        earlier = {name: self.outputs[name] for name in names[:names.index(stage_name)]}
        ctx = Context(self.job_id, self.payload, stage_name, attempt, earlier,
                      self.artifacts(stage_name, check, attempt), self.db, f"{self.job_id}-{stage_name}",
                      check_fn=check, commit_fn=self._commit)
        output = stage.run(ctx)
        self.outputs[stage_name] = json.loads(json.dumps(output))  # a checkpoint must survive JSON
        return output

    def _commit(self, writes: list[Write]) -> None:
        """`ctx.batch()`'s commit without a lease to fence on (the processor's fence is tested with it)."""
        batch = self.db.batch()
        for write in writes:
            write(batch)
        batch.commit()

    def rerun(self, stage_name: str) -> StageOutput:
        """As the processor reruns a stage: a new run, writing under its own prefix."""
        return self.run(stage_name, attempt=2)

    def run_all(self) -> dict[str, StageOutput]:
        for name in self.job_type.stage_names():
            self.run(name)
        return self.outputs

    def contents(self) -> dict[tuple[str, str], str]:
        """(stage, name) -> md5 of every object of the job, whichever run wrote it."""
        found = {}
        for blob in self.bucket.client.list_blobs(self.bucket, prefix=f"jobs/{self.job_id}/"):
            _, _, stage, _run, name = blob.name.split("/", 4)
            found[(stage, name)] = blob.md5_hash
        return found

    def object_names(self) -> list[str]:
        return sorted(blob.name for blob in self.bucket.client.list_blobs(self.bucket, prefix=f"jobs/{self.job_id}/"))


@pytest.fixture
def job_run(make_bucket: Callable[[], storage.Bucket],
            firestore_client: firestore.Client) -> Callable[..., JobRun]:
    """Factory: a `JobRun` of a registered job type for a payload (validated as the API would), fresh bucket."""
    bucket = make_bucket()

    def make(job_type: str, payload: dict[str, Any], job_id: str | None = None) -> JobRun:
        kind = catalog.job_types()[job_type]
        run = JobRun(kind, kind.validate(payload), bucket, firestore_client)
        if job_id is not None:
            run.job_id = job_id
        return run

    return make
