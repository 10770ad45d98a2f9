"""Probing and resizing images over bytes made in the test, including hostile ones; and the payload's rules."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image
from pydantic import ValidationError

from oncetask import PermanentError
from catalog import images
from catalog.thumbnails import MAX_WIDTHS, ThumbnailsPayload

from builders import image_bytes, png_header_only


def test_probe_reports_format_size_and_mode() -> None:
    info = images.probe(image_bytes(300, 200, "PNG"))
    assert info.to_dict() == {"format": "PNG", "width": 300, "height": 200, "mode": "RGB", "animated": False}


def test_probe_recognises_jpeg_by_content_not_name() -> None:
    assert images.probe(image_bytes(40, 30, "JPEG")).format == "JPEG"


def test_thumbnails_keep_aspect_and_are_webp() -> None:
    thumbs = images.thumbnails(image_bytes(300, 200), [64, 128])
    assert [(t.width, t.height) for t in thumbs] == [(64, 43), (128, 85)]
    for thumb in thumbs:
        with Image.open(io.BytesIO(thumb.data)) as decoded:
            assert (decoded.format, decoded.size) == ("WEBP", (thumb.width, thumb.height))


def test_thumbnail_wider_than_source_is_not_upscaled() -> None:
    (thumb,) = images.thumbnails(image_bytes(100, 50), [400])
    assert (thumb.requested_width, thumb.width, thumb.height) == (400, 100, 50)


def test_thumbnails_are_byte_identical_on_a_rerun() -> None:
    source = image_bytes(300, 200, "JPEG")
    first = [t.data for t in images.thumbnails(source, [64, 256])]
    assert first == [t.data for t in images.thumbnails(source, [64, 256])]


def test_transparency_survives_into_the_thumbnail() -> None:
    (thumb,) = images.thumbnails(image_bytes(80, 80, "PNG", mode="RGBA"), [40])
    with Image.open(io.BytesIO(thumb.data)) as decoded:
        assert decoded.mode == "RGBA"
        assert decoded.getpixel((0, 39))[3] == 0  # a corner the drawing never touched stays transparent


def test_exif_orientation_turns_a_portrait_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    (thumb,) = images.thumbnails(image_bytes(200, 100, "JPEG", exif=exif.tobytes()), [50])
    assert (thumb.width, thumb.height) == (50, 100)


def test_thumbnail_too_tall_for_webp_is_a_permanent_error() -> None:
    strip = image_bytes(2, 17000, "PNG", mode="L")
    with pytest.raises(PermanentError) as caught:
        images.thumbnails(strip, [64])
    assert caught.value.code == "IMAGE_TOO_TALL" and "17000px tall" in caught.value.message


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (60, 40), colour) for colour in ("red", "green")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    assert images.probe(out.getvalue()).animated is True
    (thumb,) = images.thumbnails(out.getvalue(), [30])
    with Image.open(io.BytesIO(thumb.data)) as decoded:
        red, green, _ = decoded.convert("RGB").getpixel((15, 10))
        assert red > 200 and green < 50


def test_animation_cut_in_its_second_frame_is_a_permanent_error() -> None:
    frames = [Image.new("RGB", (60, 40), colour) for colour in ("red", "green")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(PermanentError) as caught:
        images.probe(out.getvalue()[:148])  # the first frame is whole; Pillow fails looking for the second
    assert caught.value.code == "INVALID_IMAGE" and "GIF" in caught.value.message


@pytest.mark.parametrize(("data", "expected"), [
    (b"", "empty"),
    (b"hello, this is plainly text", "not an image"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image"),  # EPS would run Ghostscript
])
def test_non_images_are_permanent_errors(data: bytes, expected: str) -> None:
    with pytest.raises(PermanentError) as caught:
        images.probe(data)
    assert caught.value.code == "INVALID_IMAGE" and expected in caught.value.message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF"])
def test_truncated_image_is_a_permanent_error_naming_the_format(fmt: str) -> None:
    whole = image_bytes(200, 200, fmt)
    with pytest.raises(PermanentError) as caught:
        images.probe(whole[: len(whole) // 2])
    assert caught.value.code == "INVALID_IMAGE"
    assert fmt in caught.value.message or "header" in caught.value.message


def test_header_claiming_more_pixels_than_allowed_is_refused_before_decoding() -> None:
    with pytest.raises(PermanentError) as caught:
        images.probe(png_header_only(7000, 7000))  # 49 Mpx: over our cap, under Pillow's
    assert caught.value.code == "IMAGE_TOO_LARGE" and "7000x7000" in caught.value.message


def test_pillow_decompression_bomb_error_becomes_permanent() -> None:
    with pytest.raises(PermanentError) as caught:
        images.probe(png_header_only(20000, 20000), max_pixels=10**12)  # only Pillow's own guard is left
    assert caught.value.code == "IMAGE_TOO_LARGE" and "decompression bomb" in caught.value.message


def test_small_file_inflating_to_many_pixels_is_refused() -> None:
    # 3000x3000 of zeros compresses to a few kilobytes: a bomb in miniature against a 1 Mpx cap.
    bomb = image_bytes(3000, 3000, "PNG", mode="L", optimize=True)
    assert len(bomb) < 100_000
    with pytest.raises(PermanentError) as caught:
        images.probe(bomb, max_pixels=1_000_000)
    assert caught.value.code == "IMAGE_TOO_LARGE"


def test_corrupt_png_body_is_a_permanent_error() -> None:
    data = bytearray(image_bytes(64, 64, "PNG"))
    start = data.index(b"IDAT") + 8
    data[start:start + 20] = zlib.compress(b"junk")[:20]
    with pytest.raises(PermanentError) as caught:
        images.probe(bytes(data))
    assert caught.value.code == "INVALID_IMAGE"


def test_payload_widths_are_deduplicated_and_sorted() -> None:
    payload = ThumbnailsPayload(source="gs://pics/in/cat.png", widths=[256, 64, 128, 64])
    assert payload.widths == [64, 128, 256]


@pytest.mark.parametrize(("payload", "problem"), [
    ({"source": "http://pics/cat.png"}, "gs://"),
    ({"source": "gs://pics"}, "names no object"),
    ({"source": "gs://Bad_Bucket!/cat.png"}, "not a valid Cloud Storage bucket name"),
    ({"source": "gs://pics/cat.png", "widths": [0]}, "between 1 and 4096"),
    ({"source": "gs://pics/cat.png", "widths": [5000]}, "between 1 and 4096"),
    ({"source": "gs://pics/cat.png", "widths": list(range(1, MAX_WIDTHS + 2))}, "distinct widths"),
    ({"source": "gs://pics/cat.png", "widths": []}, "at least 1"),
    ({"source": "gs://pics/cat.png", "colour": "red"}, "Extra inputs"),
])
def test_bad_payload_is_refused_naming_the_problem(payload: dict, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ThumbnailsPayload.model_validate(payload)
    assert problem in str(caught.value)
