"""image.thumbnails stage by stage against the Storage emulator: names, reruns, and inputs that must fail."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest
from google.cloud import storage
from PIL import Image

from oncetask.errors import LeaseLost, PermanentError
from catalog import thumbnails as image_thumbnails

from .builders import image_bytes
from .conftest import JobRun


def upload(bucket: storage.Bucket, name: str, data: bytes) -> str:
    bucket.blob(name).upload_from_string(data)
    return f"gs://{bucket.name}/{name}"


def test_job_writes_one_webp_per_width_and_a_manifest_under_names_of_its_run(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun]) -> None:
    source = upload(gcs_bucket, "in/cat.png", image_bytes(300, 200))
    run = job_run("image.thumbnails", {"source": source, "widths": [128, 64, 128]}, job_id="job-cat")
    outputs = run.run_all()
    assert outputs["probe"] | {"sha256": "-"} == {"source": source, "bytes": len(image_bytes(300, 200)),
                                                  "sha256": "-", "format": "PNG", "width": 300, "height": 200,
                                                  "mode": "RGB", "animated": False}
    assert [(t["uri"], t["width"], t["height"]) for t in outputs["resize"]["thumbnails"]] == [
        (run.uri("resize", "w64.webp"), 64, 43), (run.uri("resize", "w128.webp"), 128, 85)]
    assert outputs["manifest"] == {"manifest": run.uri("manifest", "manifest.json"), "count": 2}
    manifest = json.loads(run.artifacts("manifest").read(run.uri("manifest", "manifest.json")))
    assert [t["uri"] for t in manifest["thumbnails"]] == [t["uri"] for t in outputs["resize"]["thumbnails"]]
    assert manifest["source"]["sha256"] == outputs["probe"]["sha256"]
    thumb = run.bucket.blob(run.artifacts("resize").object_name("w64.webp"))
    with Image.open(io.BytesIO(thumb.download_as_bytes())) as decoded:
        assert (decoded.format, decoded.size) == ("WEBP", (64, 43))
    thumb.reload()
    assert thumb.content_type == "image/webp"


def test_rerunning_resize_writes_the_same_bytes_under_the_reruns_names(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun]) -> None:
    run = job_run("image.thumbnails", {"source": upload(gcs_bucket, "a.jpg", image_bytes(200, 200, "JPEG"))})
    run.run_all()
    before = run.contents()
    run.rerun("resize")
    run.rerun("manifest")
    after = run.contents()
    thumbnails = {key for key in after if key[0] == "resize"}
    assert {k: after[k] for k in thumbnails} == {k: before[k] for k in thumbnails} and len(thumbnails) == 3
    assert set(after) == set(before)  # the manifest names the rerun's thumbnails, so only its bytes differ


def test_corrupt_source_fails_probe_permanently_and_writes_nothing(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun]) -> None:
    whole = image_bytes(200, 200, "PNG")
    run = job_run("image.thumbnails", {"source": upload(gcs_bucket, "bad.png", whole[:300])})
    with pytest.raises(PermanentError) as caught:
        run.run("probe")
    assert caught.value.code == "INVALID_IMAGE" and "PNG" in caught.value.message
    assert run.object_names() == []


def test_missing_source_is_a_permanent_error_naming_it(gcs_bucket: storage.Bucket,
                                                       job_run: Callable[..., JobRun]) -> None:
    run = job_run("image.thumbnails", {"source": f"gs://{gcs_bucket.name}/nowhere.png"})
    with pytest.raises(PermanentError) as caught:
        run.run("probe")
    assert caught.value.code == "SOURCE_NOT_FOUND" and f"gs://{gcs_bucket.name}/nowhere.png" in caught.value.message


def test_source_above_the_byte_cap_is_refused_without_downloading(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_thumbnails, "MAX_SOURCE_BYTES", 1000)
    run = job_run("image.thumbnails", {"source": upload(gcs_bucket, "big.bmp", image_bytes(100, 100, "BMP"))})
    with pytest.raises(PermanentError) as caught:
        run.run("probe")
    assert caught.value.code == "SOURCE_TOO_LARGE" and "30054 bytes, more than the 1000 allowed" in caught.value.message


def test_source_replaced_after_probe_fails_resize(gcs_bucket: storage.Bucket,
                                                   job_run: Callable[..., JobRun]) -> None:
    source = upload(gcs_bucket, "cat.png", image_bytes(100, 100))
    run = job_run("image.thumbnails", {"source": source})
    run.run("probe")
    upload(gcs_bucket, "cat.png", image_bytes(120, 100))
    with pytest.raises(PermanentError) as caught:
        run.run("resize")
    assert caught.value.code == "SOURCE_CHANGED" and source in caught.value.message


def test_lost_lease_stops_resize_before_any_thumbnail_is_written(gcs_bucket: storage.Bucket,
                                                                  job_run: Callable[..., JobRun]) -> None:
    run = job_run("image.thumbnails", {"source": upload(gcs_bucket, "cat.png", image_bytes(100, 100))})
    run.run("probe")

    def lease_gone() -> None:
        raise LeaseLost(message="lease taken over")

    with pytest.raises(LeaseLost):
        run.run("resize", check=lease_gone)
    assert run.object_names() == []
