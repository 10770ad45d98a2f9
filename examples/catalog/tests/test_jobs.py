"""Both job types submitted as the API submits them and run by the real processor, in this process, on the
emulators (`oncetask_runner`): results, checkpoints, failures, dead letters, duplicates and retries."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from oncetask import JobState
from oncetask_dev.testing import Runner, RunnerRefused

from builders import GOOD_ROWS, HEADER, csv_bytes, image_bytes


def test_image_job_completes_and_its_result_lists_every_thumbnail(oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("in/cat.jpg", image_bytes(640, 480, "JPEG"))
    job = oncetask_runner.submit("image.thumbnails", {"source": source, "widths": [32, 64]}, key="cat-1")
    done = oncetask_runner.run(job)
    assert done.state is JobState.COMPLETED and [d.outcome for d in done.deliveries] == ["completed"]
    assert done.completed_stages == ["manifest", "probe", "resize"]
    result = oncetask_runner.result(job)
    assert result == done.outputs
    small, large = result["resize"]["thumbnails"]
    assert small["uri"].startswith(f"gs://{oncetask_runner.bucket.name}/jobs/{job.job_id}/resize/")
    with Image.open(io.BytesIO(oncetask_runner.read(small["uri"]))) as thumb:
        assert (thumb.format, thumb.size) == ("WEBP", (32, 24))
    manifest = json.loads(oncetask_runner.read(result["manifest"]["manifest"]))
    assert [t["uri"] for t in manifest["thumbnails"]] == [small["uri"], large["uri"]]
    assert sorted(oncetask_runner.objects(job)) == done.artifacts


def test_sheet_import_completes_with_small_checkpoints_and_a_redelivery_changes_nothing(
        oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("stock.csv", csv_bytes([HEADER, *GOOD_ROWS, ["", "x", "1", "1"]]))
    job = oncetask_runner.submit("sheet.import", {"source": source})
    done = oncetask_runner.run(job)
    assert done.state is JobState.COMPLETED
    assert done.outputs["parse"]["errors"] == [
        {"row": 5, "field": "sku", "message": "Missing required field: sku", "value": None}]
    assert oncetask_runner.result(job)["report"]["imported"] == 3
    assert oncetask_runner.deliver(job).outcome == "already_completed"
    assert sorted(oncetask_runner.documents("products")) == ["A-1", "B-2", "C-3"]


def test_corrupt_image_fails_the_job_at_once_and_leaves_a_dead_letter(oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("cat.png", image_bytes(100, 100)[:120])
    job = oncetask_runner.submit("image.thumbnails", {"source": source})
    done = oncetask_runner.run(job)
    assert done.state is JobState.FAILED and len(done.deliveries) == 1  # permanent: no retry
    assert (done.error["code"], done.error["stage"]) == ("INVALID_IMAGE", "probe")
    assert "corrupt or truncated PNG" in done.error["message"]
    letter = oncetask_runner.dead_letter(job)
    assert letter is not None and letter["last_error"]["code"] == "INVALID_IMAGE"
    assert oncetask_runner.result(job) is None and oncetask_runner.objects(job) == []


def test_a_failed_job_retried_after_its_input_is_fixed_completes(oncetask_runner: Runner) -> None:
    source = f"gs://{oncetask_runner.bucket.name}/late.png"
    job = oncetask_runner.submit("image.thumbnails", {"source": source, "widths": [16]})
    assert oncetask_runner.run(job).error["code"] == "SOURCE_NOT_FOUND"
    oncetask_runner.upload("late.png", image_bytes(64, 64))
    assert oncetask_runner.retry(job).status == "queued"
    done = oncetask_runner.run(job)
    assert done.state is JobState.COMPLETED and done.generation == 2
    assert oncetask_runner.dead_letter(job) is None  # a retry takes the dead letter back


def test_the_same_key_gives_the_same_job_and_runs_it_once(oncetask_runner: Runner) -> None:
    payload = {"source": oncetask_runner.upload("a.png", image_bytes(50, 50)), "widths": [16]}
    first = oncetask_runner.submit("image.thumbnails", payload, key="upload-7")
    oncetask_runner.run(first)
    again = oncetask_runner.submit("image.thumbnails", payload, key="upload-7")
    assert (again.job_id, again.status) == (first.job_id, "already_completed")
    assert oncetask_runner.job(again).attempts == 1
    with pytest.raises(RunnerRefused) as refused:
        oncetask_runner.submit("image.thumbnails", {**payload, "widths": [32]}, key="upload-7")
    assert (refused.value.status, refused.value.code) == (409, "CONFLICT")


@pytest.mark.parametrize(("job_type", "payload", "field"), [
    ("image.thumbnails", {"source": "s3://bucket/cat.png"}, "payload.source"),
    ("image.thumbnails", {"source": "gs://bucket/cat.png", "widths": [0]}, "payload.widths"),
    ("sheet.import", {"source": "gs://bucket/x.csv", "collection": "jobs"}, "payload.collection"),
    ("video.transcode", {}, "job_type"),
])
def test_a_bad_submission_is_refused_as_the_api_refuses_it(oncetask_runner: Runner, job_type: str, payload: dict,
                                                            field: str) -> None:
    with pytest.raises(RunnerRefused) as refused:
        oncetask_runner.submit(job_type, payload)
    assert (refused.value.status, refused.value.field) == (422, field)
