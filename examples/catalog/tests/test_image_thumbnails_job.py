"""image.thumbnails stage by stage (`oncetask_runner.stages`) against the Storage emulator: names, reruns, and
inputs that must fail. The whole job through the processor is in test_jobs.py."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from oncetask import LeaseLost, PermanentError
from oncetask_dev.testing import Runner

from builders import image_bytes
from catalog import thumbnails as image_thumbnails


def test_job_writes_one_webp_per_width_and_a_manifest_under_names_of_its_run(oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("in/cat.png", image_bytes(300, 200))
    run = oncetask_runner.stages("image.thumbnails", {"source": source, "widths": [128, 64, 128]}, job_id="job-cat")
    outputs = run.run_all()
    assert outputs["probe"] | {"sha256": "-"} == {"source": source, "bytes": len(image_bytes(300, 200)),
                                                  "sha256": "-", "format": "PNG", "width": 300, "height": 200,
                                                  "mode": "RGB", "animated": False}
    assert [(t["uri"], t["width"], t["height"]) for t in outputs["resize"]["thumbnails"]] == [
        (run.uri("resize", "w64.webp"), 64, 43), (run.uri("resize", "w128.webp"), 128, 85)]
    assert outputs["manifest"] == {"manifest": run.uri("manifest", "manifest.json"), "count": 2}
    manifest = json.loads(run.read(run.uri("manifest", "manifest.json")))
    assert [t["uri"] for t in manifest["thumbnails"]] == [t["uri"] for t in outputs["resize"]["thumbnails"]]
    assert manifest["source"]["sha256"] == outputs["probe"]["sha256"]
    thumb = oncetask_runner.blob(run.uri("resize", "w64.webp"))
    with Image.open(io.BytesIO(thumb.download_as_bytes())) as decoded:
        assert (decoded.format, decoded.size) == ("WEBP", (64, 43))
    assert thumb.content_type == "image/webp"


def test_rerunning_resize_writes_the_same_bytes_under_the_reruns_names(oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("a.jpg", image_bytes(200, 200, "JPEG"))
    run = oncetask_runner.stages("image.thumbnails", {"source": source})
    run.run_all()
    before = run.contents()
    run.rerun("resize")
    run.rerun("manifest")
    after = run.contents()
    thumbnails = {key for key in after if key[0] == "resize"}
    assert {k: after[k] for k in thumbnails} == {k: before[k] for k in thumbnails} and len(thumbnails) == 3
    assert set(after) == set(before)  # the manifest names the rerun's thumbnails, so only its bytes differ


def test_corrupt_source_fails_probe_permanently_and_writes_nothing(oncetask_runner: Runner) -> None:
    whole = image_bytes(200, 200, "PNG")
    run = oncetask_runner.stages("image.thumbnails", {"source": oncetask_runner.upload("bad.png", whole[:300])})
    with pytest.raises(PermanentError) as caught:
        run.run("probe")
    assert caught.value.code == "INVALID_IMAGE" and "PNG" in caught.value.message
    assert run.objects() == []


def test_missing_source_is_a_permanent_error_naming_it(oncetask_runner: Runner) -> None:
    nowhere = f"gs://{oncetask_runner.bucket.name}/nowhere.png"
    run = oncetask_runner.stages("image.thumbnails", {"source": nowhere})
    with pytest.raises(PermanentError) as caught:
        run.run("probe")
    assert caught.value.code == "SOURCE_NOT_FOUND" and nowhere in caught.value.message


def test_source_above_the_byte_cap_is_refused_without_downloading(
        oncetask_runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image_thumbnails, "MAX_SOURCE_BYTES", 1000)
    source = oncetask_runner.upload("big.bmp", image_bytes(100, 100, "BMP"))
    run = oncetask_runner.stages("image.thumbnails", {"source": source})
    with pytest.raises(PermanentError) as caught:
        run.run("probe")
    assert caught.value.code == "SOURCE_TOO_LARGE" and "30054 bytes, more than the 1000 allowed" in caught.value.message


def test_source_replaced_after_probe_fails_resize(oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("cat.png", image_bytes(100, 100))
    run = oncetask_runner.stages("image.thumbnails", {"source": source})
    run.run("probe")
    oncetask_runner.upload("cat.png", image_bytes(120, 100))
    with pytest.raises(PermanentError) as caught:
        run.run("resize")
    assert caught.value.code == "SOURCE_CHANGED" and source in caught.value.message


def test_lost_lease_stops_resize_before_any_thumbnail_is_written(oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("cat.png", image_bytes(100, 100))
    run = oncetask_runner.stages("image.thumbnails", {"source": source})
    run.run("probe")

    def lease_gone() -> None:
        raise LeaseLost(message="lease taken over")

    with pytest.raises(LeaseLost):
        run.run("resize", check=lease_gone)
    assert run.objects() == []
