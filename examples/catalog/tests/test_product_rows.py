"""Row validation of sheet.import: valid rows become exact records, bad ones errors naming row, field and problem."""

from __future__ import annotations

import csv
import io

import pytest

from oncetask import PermanentError
from catalog import product_rows, sheets
from catalog.product_rows import RowError

from builders import GOOD_ROWS, HEADER, csv_bytes, xlsx_bytes


def validate(rows: list[list[object]], header: list[str] = HEADER) -> product_rows.Validated:
    return product_rows.validate(sheets.read_sheet(csv_bytes([header, *rows])))


def test_valid_rows_become_exact_records() -> None:
    result = validate(GOOD_ROWS)
    assert result.errors == []
    assert result.records[0] == {"row": 2, "sku": "A-1", "name": "Lamp", "quantity": 3, "price": "19.99",
                                 "price_cents": 1999, "email": "ops@example.com"}
    assert [(r["row"], r["price"], r["price_cents"], r["email"]) for r in result.records[1:]] == [
        (3, "45.00", 4500, None), (4, "120.50", 12050, None)]


def test_xlsx_numbers_validate_like_their_csv_text() -> None:
    sheet = sheets.read_sheet(xlsx_bytes([HEADER, ["A-1", "Lamp", 3, 19.99, None], ["B-2", "Desk", 4.0, 100, None]]))
    result = product_rows.validate(sheet)
    assert result.errors == []
    assert [(r["quantity"], r["price"]) for r in result.records] == [(3, "19.99"), (4, "100.00")]


@pytest.mark.parametrize(("row", "expected"), [
    (["A-1", "", 1, "2"], RowError(2, "name", "Missing required field: name")),
    (["A-1", "Lamp", -1, "2"], RowError(2, "quantity", "Input should be greater than or equal to 0", "-1")),
    (["A-1", "Lamp", "three", "2"], RowError(
        2, "quantity", "Input should be a valid integer, unable to parse string as an integer", "three")),
    (["A-1", "Lamp", 1, "2.999"], RowError(2, "price", "Decimal input should have no more than 2 decimal places",
                                           "2.999")),
    (["A-1", "Lamp", 1, "NaN"], RowError(2, "price", "Input should be a finite number", "NaN")),
    (["a/b", "Lamp", 1, "2"], RowError(
        2, "sku", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", "a/b")),
    (["A-1", "Lamp", 1, "2", "not-an-email"], RowError(2, "email", "is not an email address", "not-an-email")),
])
def test_bad_row_is_an_error_naming_row_field_and_problem(row: list[object], expected: RowError) -> None:
    result = validate([row])
    assert result.records == []
    assert result.errors == [expected]


def test_every_problem_of_a_row_is_reported_and_good_rows_still_pass() -> None:
    result = validate([["", "", "x", ""], GOOD_ROWS[0]])
    assert [(e.row, e.field) for e in result.errors] == [(2, "sku"), (2, "name"), (2, "quantity"), (2, "price")]
    assert [r["sku"] for r in result.records] == ["A-1"]
    assert str(result.errors[0]) == "row 2: sku: Missing required field: sku"


def test_repeated_sku_is_an_error_on_the_later_row_pointing_at_the_first() -> None:
    result = validate([GOOD_ROWS[0], GOOD_ROWS[1], GOOD_ROWS[0]])
    assert [r["row"] for r in result.records] == [2, 3]
    assert result.errors == [RowError(4, "sku", "duplicate SKU: already at row 2", "A-1")]


def test_formula_text_is_stored_as_text_never_evaluated() -> None:
    result = validate([["A-1", "=1+1", 1, "2"], ["B-2", "@cmd|' /C calc'!A0", 1, "2"]])
    assert [r["name"] for r in result.records] == ["=1+1", "@cmd|' /C calc'!A0"]


def test_missing_required_columns_are_one_permanent_error_listing_all() -> None:
    with pytest.raises(PermanentError) as caught:
        validate([["A-1", "Lamp"]], header=["sku", "name", "colour"])
    assert caught.value.code == "MISSING_COLUMNS"
    assert caught.value.message == "missing required columns: quantity, price (found: sku, name, colour)"


def test_unknown_columns_are_ignored_and_listed() -> None:
    assert product_rows.check_columns(["sku", "name", "quantity", "price", "colour", ""]) == ["colour"]


def test_huge_hostile_header_gives_a_short_message() -> None:
    header = [f"{i}" + "x" * 100_000 for i in range(100)]
    with pytest.raises(PermanentError) as caught:
        product_rows.check_columns(header)
    assert caught.value.message.endswith("and 80 more)") and len(caught.value.message) < 1200
    assert len(str(product_rows.check_columns(["sku", "name", "quantity", "price", *header]))) < 1200


def test_errors_csv_defuses_formula_cells_and_keeps_everything_else() -> None:
    errors = [RowError(2, "name", "bad", "=HYPERLINK(\"http://evil\")"), RowError(3, "quantity", "bad", "+1"),
              RowError(4, "price", "bad", "-2"), RowError(5, "email", "bad", "@x"), RowError(6, "sku", "plain", "ok")]
    table = list(csv.reader(io.StringIO(product_rows.errors_csv(errors).decode("utf-8-sig"))))
    assert table[0] == ["row", "field", "message", "value"]
    assert [row[3] for row in table[1:]] == ["'=HYPERLINK(\"http://evil\")", "'+1", "'-2", "'@x", "ok"]


def test_offending_values_are_shortened_in_errors() -> None:
    (error,) = validate([["A-1", "Lamp", "9" * 500, "2"]]).errors
    assert error.value is not None and len(error.value) == product_rows.VALUE_SHOWN + 1
