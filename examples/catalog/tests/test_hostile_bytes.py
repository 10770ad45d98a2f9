"""Damaged inputs: whatever the bytes, reading them ends in a result or a PermanentError, never another crash.

Each example is a valid seed file with some bytes overwritten and maybe truncated (random bytes alone would
almost never get past the first magic-number check). Derandomised, so CI sees the same examples every run.
"""

from __future__ import annotations

import io
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from oncetask import PermanentError
from catalog import images, product_rows, sheets

from builders import GOOD_ROWS, HEADER, csv_bytes, image_bytes, xlsx_bytes

def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:])
    return out.getvalue()


IMAGE_SEEDS = [*(image_bytes(48, 32, fmt) for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP")), animated_gif()]
SHEET_SEEDS = [xlsx_bytes([HEADER, *GOOD_ROWS]), csv_bytes([HEADER, *GOOD_ROWS])]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@st.composite
def damaged(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(1, len(data)))])


@st.composite
def damaged_workbook(draw: st.DrawFn) -> bytes:
    """A well-formed zip around a damaged workbook part: gets past the zip check into openpyxl's XML parsing."""
    with zipfile.ZipFile(io.BytesIO(SHEET_SEEDS[0])) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    target = draw(st.sampled_from(sorted(name for name in parts if name.endswith(".xml"))))
    part = bytearray(parts[target])
    for _ in range(draw(st.integers(1, 4))):
        part[draw(st.integers(0, len(part) - 1))] = draw(st.sampled_from(b'<>/"=0129 rtsv:\x00\xff'))
    parts[target] = bytes(part)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in parts.items():
            archive.writestr(name, body)
    return out.getvalue()


@FUZZ
@given(damaged(IMAGE_SEEDS))
def test_damaged_image_is_probed_and_resized_or_refused_permanently(data: bytes) -> None:
    try:
        images.probe(data)
        images.thumbnails(data, [16, 64])
    except PermanentError as error:
        assert error.message


@FUZZ
@given(st.one_of(damaged(SHEET_SEEDS), damaged_workbook()))
def test_damaged_sheet_is_validated_or_refused_permanently(data: bytes) -> None:
    try:
        result = product_rows.validate(sheets.read_sheet(data))
    except PermanentError as error:
        assert error.message
    else:
        assert all(error.row >= 2 for error in result.errors)
