"""image.gallery: a parent job that starts an image.thumbnails child per image and stitches their thumbnails once
every child has ended, run by the real processor on the emulators (`oncetask_runner` runs the children too)."""

from __future__ import annotations

import io

from PIL import Image

from oncetask import JobState
from oncetask_dev.testing import Runner, RunnerRefused

from builders import image_bytes
from catalog.gallery import MAX_IMAGES


def is_empty_cell(pixel: tuple[int, int, int]) -> bool:
    return all(abs(channel - 238) <= 4 for channel in pixel)  # the sheet's grey, give or take WebP's loss


def test_gallery_stitches_every_thumbnail_in_order_and_lists_the_image_that_failed(oncetask_runner: Runner) -> None:
    sources = [oncetask_runner.upload("in/wide.png", image_bytes(400, 100)),
               oncetask_runner.upload("in/tall.jpg", image_bytes(100, 400, "JPEG")),
               oncetask_runner.upload("in/broken.png", image_bytes(200, 200)[:200]),
               oncetask_runner.upload("in/square.webp", image_bytes(300, 300, "WEBP"))]
    job = oncetask_runner.submit("image.gallery", {"sources": sources, "tile": 64, "columns": 3}, key="g-1")
    done = oncetask_runner.run(job)
    assert done.state is JobState.COMPLETED, done.error
    assert done.outputs["split"] == {"children": 4}
    stitched = done.outputs["stitch"]
    assert stitched["images"] == 3
    assert stitched["missing"] == [{"index": 2, "source": sources[2], "state": "failed", "error": "INVALID_IMAGE"}]
    with Image.open(io.BytesIO(oncetask_runner.read(stitched["gallery"]))) as sheet:
        assert (sheet.format, sheet.size) == ("WEBP", (3 * 64, 2 * 64))  # 4 tiles, 3 to a row
        pixels = sheet.convert("RGB")
        assert is_empty_cell(pixels.getpixel((2 * 64 + 32, 32)))  # the broken image's cell is left empty
        assert not is_empty_cell(pixels.getpixel((32, 32)))  # the wide image's thumbnail is in the first


def test_the_gallery_is_the_parents_own_artifact_and_each_child_is_a_thumbnails_job(oncetask_runner: Runner) -> None:
    sources = [oncetask_runner.upload(f"in/{i}.png", image_bytes(120 + i, 90)) for i in range(3)]
    job = oncetask_runner.submit("image.gallery", {"sources": sources, "tile": 32}, key="g-2")
    done = oncetask_runner.run(job)
    assert done.state is JobState.COMPLETED
    assert oncetask_runner.objects(job) == [done.outputs["stitch"]["gallery"]]
    children = oncetask_runner.documents("jobs")
    thumbs = [doc for doc in children.values() if doc["job_type"] == "image.thumbnails"]
    assert len(thumbs) == 3 and all(doc["state"] == "completed" for doc in thumbs)
    assert sorted(doc["payload"]["source"] for doc in thumbs) == sorted(sources)


def test_a_gallery_of_no_images_or_too_many_is_refused_naming_the_field(oncetask_runner: Runner) -> None:
    for sources in ([], [f"gs://b-in/{i}.png" for i in range(MAX_IMAGES + 1)]):
        try:
            oncetask_runner.submit("image.gallery", {"sources": sources})
        except RunnerRefused as refused:
            assert (refused.status, refused.field) == (422, "payload.sources")
        else:
            raise AssertionError(f"{len(sources)} sources were accepted")
    assert oncetask_runner.documents("jobs") == {}
