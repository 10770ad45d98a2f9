"""Input files made in the test: images drawn with Pillow, workbooks built with openpyxl, hand-made PNG headers."""

from __future__ import annotations

import csv
import io
import struct
import zlib

import openpyxl
from PIL import Image, ImageDraw


def image_bytes(width: int = 300, height: int = 200, fmt: str = "PNG", mode: str = "RGB", **save: object) -> bytes:
    """A small picture (a diagonal and a box, so a resize has something to resample)."""
    image = Image.new(mode, (width, height), "white" if mode != "RGBA" else (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, width - 1, height - 1), fill="red" if mode != "L" else 0, width=3)
    draw.rectangle((width // 4, height // 4, width // 2, height // 2), fill="blue" if mode != "L" else 128)
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims `width`x`height` and whose body is empty: a bomb's header without its bulk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def csv_bytes(rows: list[list[object]], encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[object]], title: str = "Products", extra_sheets: tuple[str, ...] = (),
               far_row: tuple[int, object] | None = None) -> bytes:
    """A workbook whose first sheet holds `rows`; `far_row=(n, value)` puts one value in column A of row n."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    if far_row is not None:
        sheet.cell(row=far_row[0], column=1, value=far_row[1])
    for name in extra_sheets:
        workbook.create_sheet(name)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


HEADER = ["SKU", "Name", "Quantity", "Price", "Email"]
GOOD_ROWS = [
    ["A-1", "Lamp", 3, "19.99", "ops@example.com"],
    ["B-2", "Chair", 0, "45", None],
    ["C-3", "Desk", 12, "120.50", ""],
]
