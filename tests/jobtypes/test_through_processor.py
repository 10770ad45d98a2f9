"""Both job types run by the real Processor (in process) on the emulators: checkpoints, results and failures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from google.cloud import firestore, storage

from fixtures.storage import StorageEmulator
from oncetask.commands import validate_payload
from oncetask.job import RESULTS
from oncetask.jobstore import JobStore
from catalog import app as catalog
from oncetask.processor import Processor, TaskDelivery
from oncetask.settings import Settings

from .builders import GOOD_ROWS, HEADER, csv_bytes, image_bytes


@pytest.fixture
def submit(firestore_client: firestore.Client) -> Callable[[str, str, dict], str]:
    """Create a queued job document as the API does (without a task: the test delivers it by hand)."""

    def create(job_id: str, job_type: str, payload: dict) -> str:
        kind, normalized = validate_payload(job_type, payload, catalog.job_types())
        now = datetime.now(timezone.utc)
        JobStore(firestore_client).create(job_id, {
            "job_type": kind.name, "payload": normalized, "payload_hash": "-", "owner": "tester",
            "idempotency_key": None, "state": "queued", "generation": 1, "attempts": 0, "retry_base": 0,
            "fencing": 0, "cancel_requested": False, "checkpoints": {}, "errors": [], "task_name": "t",
            "created_at": now, "updated_at": now})
        return job_id

    return create


@pytest.fixture
def processor(firestore_client: firestore.Client, storage_emulator: StorageEmulator,
              make_bucket: Callable[[], storage.Bucket]) -> Processor:
    settings = Settings(STORAGE_EMULATOR_HOST=storage_emulator.host, lease_ttl_seconds=30)
    return Processor(JobStore(firestore_client), make_bucket(), settings, catalog.job_types())


def test_sheet_import_completes_with_small_checkpoints_and_a_redelivery_changes_nothing(
        gcs_bucket: storage.Bucket, processor: Processor, submit: Callable[[str, str, dict], str],
        firestore_client: firestore.Client) -> None:
    gcs_bucket.blob("stock.csv").upload_from_string(csv_bytes([HEADER, *GOOD_ROWS, ["", "x", "1", "1"]]))
    job_id = submit("job-sheet", "sheet.import", {"source": f"gs://{gcs_bucket.name}/stock.csv"})
    assert processor.handle(TaskDelivery(job_id, 1)).outcome == "completed"
    job = processor.store.get(job_id)
    assert job is not None and job.state.value == "completed"
    assert sorted(job.checkpoints) == ["parse", "report", "upsert"]
    assert job.checkpoints["parse"]["output"]["errors"] == [
        {"row": 5, "field": "sku", "message": "Missing required field: sku", "value": None}]
    result = firestore_client.collection(RESULTS).document(job_id).get().to_dict()
    assert result["outputs"]["report"]["imported"] == 3
    assert processor.handle(TaskDelivery(job_id, 1)).outcome == "already_completed"
    assert len(list(firestore_client.collection("products").stream())) == 3


def test_corrupt_image_fails_the_job_at_once_with_a_clear_error(
        gcs_bucket: storage.Bucket, processor: Processor, submit: Callable[[str, str, dict], str]) -> None:
    gcs_bucket.blob("cat.png").upload_from_string(image_bytes(100, 100)[:120])
    job_id = submit("job-image", "image.thumbnails", {"source": f"gs://{gcs_bucket.name}/cat.png"})
    outcome = processor.handle(TaskDelivery(job_id, 1))
    assert (outcome.outcome, outcome.detail["error"]["code"], outcome.detail["error"]["stage"]) == (
        "failed", "INVALID_IMAGE", "probe")
    job = processor.store.get(job_id)
    assert job is not None and job.state.value == "failed" and "corrupt or truncated PNG" in job.errors[-1]["message"]


def test_image_job_completes_and_its_result_lists_every_thumbnail(
        gcs_bucket: storage.Bucket, processor: Processor, submit: Callable[[str, str, dict], str],
        firestore_client: firestore.Client) -> None:
    gcs_bucket.blob("cat.jpg").upload_from_string(image_bytes(640, 480, "JPEG"))
    job_id = submit("job-thumbs", "image.thumbnails", {"source": f"gs://{gcs_bucket.name}/cat.jpg", "widths": [32]})
    assert processor.handle(TaskDelivery(job_id, 1)).outcome == "completed"
    outputs = firestore_client.collection(RESULTS).document(job_id).get().to_dict()["outputs"]
    (thumb,) = outputs["resize"]["thumbnails"]
    assert thumb["uri"].startswith(f"gs://{processor.bucket.name}/jobs/job-thumbs/resize/")
    assert thumb["uri"].endswith("/w32.webp")
    assert processor.bucket.blob(thumb["uri"].split("/", 3)[3]).exists()
