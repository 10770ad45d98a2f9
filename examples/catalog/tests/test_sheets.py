"""Reading CSV and XLSX bytes as rows: encodings, formats, headers, limits, and hostile files."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from oncetask import PermanentError
from catalog import sheets

from builders import GOOD_ROWS, HEADER, csv_bytes, xlsx_bytes


def rows_of(sheet: sheets.Sheet) -> list[tuple[int, list[str | None]]]:
    return list(sheet.rows)


def permanent(data: bytes, **kwargs: object) -> PermanentError:
    """The PermanentError that reading `data` (header and all rows) raises."""
    with pytest.raises(PermanentError) as caught:
        rows_of(sheets.read_sheet(data, **kwargs))  # type: ignore[arg-type]
    return caught.value


def test_csv_header_is_normalised_and_rows_are_text_numbered_like_a_spreadsheet() -> None:
    sheet = sheets.read_sheet(csv_bytes([[" SKU ", "Unit Price"], ["A-1", "2.50"], [], ["B-2", ""]]))
    assert (sheet.format, sheet.encoding, sheet.header) == ("csv", "utf-8", ["sku", "unit_price"])
    assert rows_of(sheet) == [(2, ["A-1", "2.50"]), (4, ["B-2", None])]
    assert sheet.stats.data_rows == 2


def test_utf8_bom_does_not_end_up_in_the_first_column_name() -> None:
    sheet = sheets.read_sheet(csv_bytes([["sku", "name"], ["A-1", "Crème"]], encoding="utf-8-sig"))
    assert (sheet.encoding, sheet.header, rows_of(sheet)) == ("utf-8-sig", ["sku", "name"], [(2, ["A-1", "Crème"])])


def test_windows_1252_export_is_detected_when_not_utf8() -> None:
    sheet = sheets.read_sheet(csv_bytes([["sku", "name"], ["A-1", "Café €5"]], encoding="cp1252"))
    assert sheet.encoding == "cp1252" and rows_of(sheet) == [(2, ["A-1", "Café €5"])]


def test_utf16_with_bom_is_read() -> None:
    sheet = sheets.read_sheet(csv_bytes([["sku", "name"], ["A-1", "Ünïcode"]], encoding="utf-16"))
    assert rows_of(sheet) == [(2, ["A-1", "Ünïcode"])]


def test_bytes_that_are_no_known_encoding_are_a_clear_permanent_error() -> None:
    error = permanent(b"sku,name\nA-1,\x81\x8d\n")
    assert error.code == "UNKNOWN_ENCODING" and "byte 0x81 at offset 13" in error.message


def test_semicolon_separated_csv_is_split_on_semicolons() -> None:
    sheet = sheets.read_sheet(csv_bytes([["sku", "price"], ["A-1", "2,50"]], delimiter=";"))
    assert rows_of(sheet) == [(2, ["A-1", "2,50"])]


@pytest.mark.parametrize(("data", "code"), [
    (b"", "EMPTY_FILE"),
    (b"\n\n  \n,,,\n", "NO_HEADER"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "UNSUPPORTED_FORMAT"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NOT_A_SHEET"),
    (b"PK\x03\x04 truncated zip", "NOT_A_SHEET"),
])
def test_files_that_are_not_sheets_are_permanent_errors(data: bytes, code: str) -> None:
    assert permanent(data).code == code


def test_a_zip_that_is_not_a_workbook_is_not_a_sheet() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    error = permanent(out.getvalue())
    assert error.code == "NOT_A_SHEET" and "not a valid XLSX workbook" in error.message


def test_repeated_column_is_a_permanent_error_naming_it() -> None:
    error = permanent(csv_bytes([["sku", "Name", "name "], ["A-1", "x", "y"]]))
    assert error.code == "BAD_HEADER" and "'name' appears twice (columns 2 and 3)" in error.message


def test_malformed_csv_names_the_row() -> None:
    error = permanent(b"sku,name\nA-1," + b"x" * 200_000 + b"\n")  # one cell above csv's field limit
    assert error.code == "MALFORMED_CSV" and error.message.startswith("row 2")


def test_a_million_trailing_empty_csv_rows_end_the_data_quickly() -> None:
    data = csv_bytes([["sku"], ["A-1"]]) + b",,\r\n" * 1_000_000 + b"LATE\r\n"
    started = time.monotonic()
    sheet = sheets.read_sheet(data)
    assert rows_of(sheet) == [(2, ["A-1"])]
    assert sheet.stats.stopped_at_empty_run == 2 + sheets.MAX_EMPTY_RUN
    assert time.monotonic() - started < 2.0


def test_more_rows_than_the_cap_is_a_permanent_error_naming_the_row() -> None:
    error = permanent(csv_bytes([["sku"]] + [[f"S{i}"] for i in range(6)]), max_rows=5)
    assert error.code == "TOO_MANY_ROWS" and "more than 5 data rows (row 7)" in error.message


def test_xlsx_rows_come_out_as_text_with_formulas_unevaluated() -> None:
    data = xlsx_bytes([HEADER, ["A-1", '=HYPERLINK("http://evil","x")', 3, 19.99, None],
                       ["B-2", "@SUM(1)", 2.0, 7, None]])
    sheet = sheets.read_sheet(data)
    assert (sheet.format, sheet.encoding, sheet.header) == ("xlsx", None, ["sku", "name", "quantity", "price", "email"])
    assert rows_of(sheet) == [
        (2, ["A-1", '=HYPERLINK("http://evil","x")', "3", "19.99", None]),
        (3, ["B-2", "@SUM(1)", "2", "7", None]),
    ]


def test_data_spread_thinly_over_empty_rows_is_refused_after_a_bounded_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sheets, "MAX_SCANNED_ROWS", 5000)
    data = csv_bytes([["sku"]]) + (b"\r\n" * 900 + b"A-1\r\n") * 10
    error = permanent(data)
    assert error.code == "TOO_MANY_ROWS" and "more than 5000 rows, counting empty ones" in error.message


def test_xlsx_sheet_is_chosen_by_name_and_a_missing_one_lists_the_names() -> None:
    data = xlsx_bytes([HEADER, *GOOD_ROWS], title="Stock", extra_sheets=("Notes",))
    assert sheets.read_sheet(data, "Stock").header[0] == "sku"
    error = permanent(data, sheet_name="Prices")
    assert error.code == "SHEET_NOT_FOUND" and "['Stock', 'Notes']" in error.message


def test_xlsx_with_a_cell_in_row_a_million_stops_after_the_empty_run() -> None:
    data = xlsx_bytes([HEADER, *GOOD_ROWS], far_row=(1_000_000, "LATE"))
    started = time.monotonic()
    sheet = sheets.read_sheet(data)
    assert [number for number, _ in sheet.rows] == [2, 3, 4]
    assert sheet.stats.stopped_at_empty_run == 4 + sheets.MAX_EMPTY_RUN
    assert time.monotonic() - started < 2.0


def test_xlsx_inflating_past_the_cap_is_refused_before_opening(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sheets, "MAX_XLSX_UNCOMPRESSED", 10_000)  # a real bomb would cost seconds to build
    error = permanent(xlsx_bytes([HEADER, *GOOD_ROWS * 200]))
    assert error.code == "SHEET_TOO_LARGE" and "more than the 10000 allowed" in error.message


def test_truncated_xlsx_is_a_permanent_error() -> None:
    data = xlsx_bytes([HEADER, *GOOD_ROWS])
    error = permanent(data[: len(data) - 200])
    assert error.code == "NOT_A_SHEET"


def test_csv_file_asked_for_a_sheet_name_says_csv_has_no_sheets() -> None:
    error = permanent(csv_bytes([HEADER]), sheet_name="Stock")
    assert error.code == "SHEET_NOT_FOUND" and "CSV file has no sheets" in error.message
