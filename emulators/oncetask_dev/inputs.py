"""The demo's input files, made on the spot (nothing is downloaded): a few images drawn with Pillow, one corrupt
image, and a product sheet as CSV and as XLSX, each with some invalid rows."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from openpyxl import Workbook
from PIL import Image, ImageDraw

SHEET_HEADER = ("sku", "name", "quantity", "price", "email")
# (row, why it is invalid or None): the invalid ones are what the import must report, not import.
SHEET_ROWS: tuple[tuple[tuple[object, ...], str | None], ...] = (
    (("SKU-001", "Blue mug", 12, "7.50", "shop@example.com"), None),
    (("SKU-002", "Red mug", 3, "7.50", ""), None),
    (("SKU-003", "Teapot", 1, "24.00", "tea@example.com"), None),
    (("SKU-004", "Kettle", -2, "31.00", ""), "negative quantity"),
    (("SKU-005", "Spoon", 40, "cheap", ""), "price is not a number"),
    (("SKU-006", "Plate", 8, "4.25", "not-an-email"), "bad email"),
    (("SKU-001", "Blue mug again", 1, "7.50", ""), "duplicate SKU"),
    (("SKU-007", "Bowl", 5, "3.10", ""), None),
)
VALID_SHEET_ROWS = sum(1 for _, why in SHEET_ROWS if why is None)
INVALID_SHEET_ROWS = len(SHEET_ROWS) - VALID_SHEET_ROWS


@dataclass(frozen=True)
class InputFile:
    name: str
    data: bytes
    content_type: str
    job_type: str
    expect: str  # "completed" or "failed": what the demo checks the job ends as


def _image(width: int, height: int, background: str, shape: str, fmt: str) -> bytes:
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    box = (width // 5, height // 5, width * 4 // 5, height * 4 // 5)
    if shape == "circle":
        draw.ellipse(box, fill="white", outline="black", width=6)
    elif shape == "square":
        draw.rectangle(box, fill="gold", outline="black", width=6)
    else:
        draw.polygon([(width // 2, height // 6), (width * 5 // 6, height * 5 // 6), (width // 6, height * 5 // 6)],
                     fill="orchid", outline="black")
    draw.text((10, 10), f"oncetask demo {width}x{height}", fill="black")
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def sheet_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(SHEET_HEADER)
    for row, _ in SHEET_ROWS:
        writer.writerow(row)
    return out.getvalue().encode()


def sheet_xlsx() -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Products"
    sheet.append(SHEET_HEADER)
    for row, _ in SHEET_ROWS:
        sheet.append([cell if cell != "" else None for cell in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def demo_inputs() -> list[InputFile]:
    """Every input file of the demo with the job type that processes it and the outcome expected."""
    png = "image/png"
    return [
        InputFile("circle.png", _image(640, 480, "steelblue", "circle", "PNG"), png, "image.thumbnails", "completed"),
        InputFile("square.jpg", _image(800, 600, "seagreen", "square", "JPEG"), "image/jpeg", "image.thumbnails",
                  "completed"),
        InputFile("triangle.png", _image(300, 300, "salmon", "triangle", "PNG"), png, "image.thumbnails",
                  "completed"),
        # A PNG signature followed by garbage: the probe must refuse it, permanently (no retry can fix a file).
        InputFile("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"this is not image data " * 40, png, "image.thumbnails",
                  "failed"),
        InputFile("products.csv", sheet_csv(), "text/csv", "sheet.import", "completed"),
        InputFile("products.xlsx", sheet_xlsx(),
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "sheet.import", "completed"),
    ]
