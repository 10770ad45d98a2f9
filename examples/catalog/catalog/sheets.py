"""Reading a CSV or XLSX upload as rows of text, with every limit a hostile file could push on.

Pure over bytes. File-level problems (not a sheet, an undecodable encoding, no header, too many rows, a zip bomb
posing as a workbook) raise `PermanentError` with a message saying what is wrong and, where it helps, how to fix
it. Cell values come out as text (or None when blank) and are never evaluated: an XLSX formula arrives as its
formula text (`=SUM(A1:A2)`), which keeps formula injection inert here.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal

import openpyxl

from oncetask import PermanentError

SheetFormat = Literal["csv", "xlsx"]

MAX_DATA_ROWS = 100_000  # more is refused, never silently truncated: the user must split the file
MAX_EMPTY_RUN = 1_000  # this many empty rows in a row end the data (sheets often carry a million blank rows)
MAX_SCANNED_ROWS = 1_048_576  # rows looked at, empty or not (Excel's own limit): data spaced by 999 empty rows
#                               would otherwise cost 100 million iterations
MAX_COLUMNS = 100  # cells beyond are ignored, so a 16384-column row costs no more than a 100-column one
MAX_XLSX_UNCOMPRESSED = 128 * 1024 * 1024  # declared sizes, which zipfile enforces while inflating each member
MAX_ZIP_MEMBERS = 10_000

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and .doc): a format we do not read
_DELIMITERS = (",", ";", "\t")

Cells = list[str | None]


@dataclass
class ReadStats:
    """Filled in while the rows are read: how many there were, and whether a run of empty rows ended them."""

    data_rows: int = 0  # non-empty rows after the header
    stopped_at_empty_run: int | None = None  # the row number where a run of empty rows ended the data


@dataclass
class Sheet:
    """A header and a one-pass iterator of (row number, cells aligned to the header)."""

    format: SheetFormat
    encoding: str | None  # of a CSV; None for XLSX
    header: list[str]  # normalised: stripped, lower case, spaces as underscores
    rows: Iterator[tuple[int, Cells]]
    stats: ReadStats


def read_sheet(data: bytes, sheet_name: str | None = None, *, max_rows: int = MAX_DATA_ROWS,
               max_empty_run: int = MAX_EMPTY_RUN) -> Sheet:
    """Open `data` as CSV or XLSX (told apart by content, not by name), read its header, and stream the rest."""
    fmt = detect_format(data)
    if fmt == "xlsx":
        raw, encoding = _xlsx_rows(data, sheet_name), None
    else:
        if sheet_name is not None:
            raise PermanentError("SHEET_NOT_FOUND", f"a CSV file has no sheets, so sheet {sheet_name!r} cannot be read")
        text, encoding = decode_text(data)
        raw = _csv_rows(text)
    stats = ReadStats()
    rows = _non_empty(raw, stats, max_empty_run)
    header_row = next(rows, None)  # the first non-empty row names the columns
    if header_row is None:
        raise PermanentError("NO_HEADER", "the sheet is empty: expected a header row naming the columns")
    header = check_header(header_row[1], header_row[0])
    return Sheet(fmt, encoding, header, _aligned(rows, len(header), stats, max_rows), stats)


def detect_format(data: bytes) -> SheetFormat:
    if not data:
        raise PermanentError("EMPTY_FILE", "the file is empty (0 bytes)")
    if data.startswith(_ZIP_MAGIC):
        return "xlsx"
    if data.startswith(_OLE_MAGIC):
        raise PermanentError("UNSUPPORTED_FORMAT", "legacy .xls workbooks are not supported: save it as .xlsx or .csv")
    return "csv"


def decode_text(data: bytes) -> tuple[str, str]:
    """Text and the encoding it was in: UTF-8 (with or without BOM), UTF-16 with BOM, or Windows-1252.

    Windows-1252 is what Excel writes on Western Windows; it is tried only when the bytes are not UTF-8, and bytes
    it leaves undefined mean neither: a clear error rather than mojibake stored in the database.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "cp1252"]
    error: UnicodeDecodeError | None = None
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            error = error or exc
            continue
        if "\x00" in text:
            raise PermanentError("NOT_A_SHEET", "the file contains binary data (NUL bytes): not a CSV or XLSX file")
        return text, encoding
    assert error is not None
    raise PermanentError(
        "UNKNOWN_ENCODING",
        f"the file is neither UTF-8 nor Windows-1252 text (byte 0x{data[error.start]:02x} at offset {error.start}): "
        "save it as CSV UTF-8")


def check_header(cells: Cells, row_number: int) -> list[str]:
    """Normalised column names ('' for an unnamed column); a repeated name is a file-level error naming it."""
    names = [normalise_column(cell) for cell in cells]
    while names and not names[-1]:
        names.pop()  # trailing blank header cells are formatting, not columns
    seen: dict[str, int] = {}
    for index, name in enumerate(names, start=1):
        if name and name in seen:
            raise PermanentError("BAD_HEADER", f"header row {row_number}: column {name[:40]!r} appears twice "
                                               f"(columns {seen[name]} and {index})")
        seen[name] = index
    return names


def normalise_column(cell: str | None) -> str:
    return "_".join((cell or "").strip().lower().split())


def cell_text(value: object) -> str | None:
    """One cell as text: blank is None; an integral float loses its '.0'; dates are ISO 8601."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _non_empty(rows: Iterator[tuple[int, Cells]], stats: ReadStats,
               max_empty_run: int) -> Iterator[tuple[int, Cells]]:
    """Non-empty rows only; `max_empty_run` empty rows in a row end the data (bounding time on blank bulk)."""
    empty_run = 0
    for number, cells in rows:
        if number > MAX_SCANNED_ROWS:
            raise PermanentError("TOO_MANY_ROWS", f"more than {MAX_SCANNED_ROWS} rows, counting empty ones")
        if all(cell is None for cell in cells):
            empty_run += 1
            if empty_run >= max_empty_run:
                stats.stopped_at_empty_run = number
                return
            continue
        empty_run = 0
        yield number, cells


def _aligned(rows: Iterator[tuple[int, Cells]], width: int, stats: ReadStats,
             max_rows: int) -> Iterator[tuple[int, Cells]]:
    """Data rows cut or padded to the header's width; more than `max_rows` of them is a file-level error."""
    for number, cells in rows:
        stats.data_rows += 1
        if stats.data_rows > max_rows:
            raise PermanentError("TOO_MANY_ROWS",
                                 f"more than {max_rows} data rows (row {number}): split the file into smaller ones")
        yield number, (cells + [None] * width)[:width]


def _csv_rows(text: str) -> Iterator[tuple[int, Cells]]:
    first_line = text.split("\n", 1)[0]
    delimiter = max(_DELIMITERS, key=first_line.count)  # Excel writes ';' where ',' is the decimal separator
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    number = 0
    try:
        for record in reader:
            number += 1  # a record, as a spreadsheet shows it: a quoted cell may span several lines
            yield number, [cell_text(cell) for cell in record[:MAX_COLUMNS]]
    except csv.Error as exc:
        raise PermanentError("MALFORMED_CSV", f"row {number + 1} (line {reader.line_num}): {exc}") from exc


def _xlsx_rows(data: bytes, sheet_name: str | None) -> Iterator[tuple[int, Cells]]:
    _check_zip(data)
    try:
        # read_only streams the sheet XML; data_only=False gives formulas as their text, never a computed value.
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - a zip that is not a workbook fails in openpyxl in many ways
        raise PermanentError("NOT_A_SHEET", f"not a valid XLSX workbook: {type(exc).__name__}: {exc}") from exc
    return _xlsx_sheet_rows(workbook, sheet_name)


def _xlsx_sheet_rows(workbook: openpyxl.Workbook, sheet_name: str | None) -> Iterator[tuple[int, Cells]]:
    try:
        if sheet_name is None:
            worksheet = workbook.worksheets[0] if workbook.worksheets else None
        elif sheet_name in workbook.sheetnames:
            worksheet = workbook[sheet_name]
        else:
            raise PermanentError("SHEET_NOT_FOUND",
                                 f"no sheet named {sheet_name!r}; the workbook has {workbook.sheetnames}")
        if worksheet is None or not hasattr(worksheet, "iter_rows"):
            raise PermanentError("NOT_A_SHEET", "the workbook has no worksheet to read")
        # The stored dimension may be wrong (or hostile): a too-small one would silently cut rows off.
        worksheet.reset_dimensions()
        number = 0
        try:
            for number, values in enumerate(worksheet.iter_rows(max_col=MAX_COLUMNS, values_only=True), start=1):
                yield number, [cell_text(value) for value in values]
        except PermanentError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt sheet XML surfaces while streaming it
            raise PermanentError("CORRUPT_SHEET", f"row {number + 1}: {type(exc).__name__}: {exc}") from exc
    finally:
        workbook.close()


def _check_zip(data: bytes) -> None:
    """Refuse a zip that would inflate past our cap before openpyxl inflates anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except Exception as exc:  # noqa: BLE001 - zipfile meets hostile bytes with BadZipFile, NotImplementedError...
        raise PermanentError("NOT_A_SHEET", f"a corrupt or truncated zip, not a valid XLSX workbook: {exc}") from exc
    if len(members) > MAX_ZIP_MEMBERS:
        raise PermanentError("NOT_A_SHEET", f"the XLSX has {len(members)} parts, more than {MAX_ZIP_MEMBERS}")
    inflated = sum(member.file_size for member in members)
    if inflated > MAX_XLSX_UNCOMPRESSED:
        raise PermanentError(
            "SHEET_TOO_LARGE",
            f"the XLSX inflates to {inflated} bytes, more than the {MAX_XLSX_UNCOMPRESSED} allowed")
