"""A stage that wrote part of its artifacts and then failed for good: the failed job keeps none of them."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel

from oncetask.errors import PermanentError
from oncetask.jobstore import JobStore
from oncetask.processor import Processor, TaskDelivery
from oncetask.stages import Context, JobType, Stage, StageOutput
from oncetask_dev.stack import LocalStack

from .conftest import unique
from .invariants import Observer


class Empty(BaseModel):
    pass


def _writes_then_fails(ctx: Context[Empty]) -> StageOutput:
    ctx.artifacts.write("part-1.bin", b"half of the output")
    raise PermanentError("BROKEN_INPUT", "the second half cannot be made")


WRITES_THEN_FAILS = JobType("test.writes_then_fails", Empty, (Stage("convert", _writes_then_fails),))


def test_a_stage_failing_for_good_after_writing_part_of_its_artifacts_leaves_none_behind(
        stack: LocalStack, observer: Observer) -> None:
    settings = stack.settings()
    store = JobStore(observer.db)
    processor = Processor(store, observer.storage.bucket(settings.bucket), settings,
                          registry={WRITES_THEN_FAILS.name: WRITES_THEN_FAILS})
    job_id = unique("half-written")
    now = datetime.now(timezone.utc)
    store.create(job_id, {"job_type": WRITES_THEN_FAILS.name, "payload": {}, "state": "queued", "generation": 1,
                          "attempts": 0, "fencing": 0, "checkpoints": {}, "errors": [], "created_at": now,
                          "updated_at": now})

    outcome = processor.handle(TaskDelivery(job_id, 1))

    assert (outcome.status, outcome.outcome) == (200, "failed")
    snap = observer.assert_invariants([job_id], timeout=5)
    assert snap.dead_letters[job_id]["last_error"]["code"] == "BROKEN_INPUT"
