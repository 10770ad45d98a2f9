"""The row model of `sheet.import` (a product catalogue) and row validation, pure over `sheets.Sheet` rows.

A bad row never fails the file: it becomes a `RowError` with its row number, field and problem (seed 001), and
the rest of the file is imported. The SKU is the row's key and its document ID, so it is restricted to
characters Firestore accepts in an ID, and a SKU repeated in one file is an error on the later row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from oncetask import PermanentError
from .sheets import Cells, Sheet

REQUIRED_COLUMNS = ("sku", "name", "quantity", "price")
OPTIONAL_COLUMNS = ("email",)

_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets (OWASP "CSV injection").
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
VALUE_SHOWN = 100  # characters of an offending value kept in an error
COLUMNS_SHOWN = 20  # column names listed in a message or an output


class ProductRow(BaseModel):
    """One product: text is stored as text (a leading '=' stays a character, nothing is ever evaluated)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    sku: str
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=0, le=1_000_000_000)
    # Decimal, not float: 19.99 must stay 19.99 cents-exact; two places at most, as a price has.
    price: Decimal = Field(ge=0, le=Decimal("1000000000"), decimal_places=2, allow_inf_nan=False)
    email: str | None = Field(None, max_length=254)

    @field_validator("sku")
    @classmethod
    def _sku_is_a_document_id(cls, sku: str) -> str:
        if not _SKU.fullmatch(sku):
            raise ValueError("must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return sku

    @field_validator("email")
    @classmethod
    def _email_has_a_shape(cls, email: str | None) -> str | None:
        if email is not None and not _EMAIL.fullmatch(email):
            raise ValueError("is not an email address")
        return email

    def to_record(self, row: int) -> dict[str, Any]:
        """JSON-able, exact: the price as a two-place string and as integer cents (what queries sort on)."""
        return {"row": row, "sku": self.sku, "name": self.name, "quantity": self.quantity,
                "price": f"{self.price:.2f}", "price_cents": int(self.price * 100), "email": self.email}


@dataclass(frozen=True)
class RowError:
    row: int
    field: str | None
    message: str
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message, "value": self.value}

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.message}" if self.field else f"row {self.row}: {self.message}"


@dataclass
class Validated:
    records: list[dict[str, Any]]
    errors: list[RowError]


def check_columns(header: list[str]) -> list[str]:
    """The unknown columns (ignored, at most 20 listed); missing required columns are a file-level error."""
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    named = [_shown(name, 40) or "" for name in header if name]
    if missing:
        found = ", ".join(named[:COLUMNS_SHOWN]) or "none"
        more = f" and {len(named) - COLUMNS_SHOWN} more" if len(named) > COLUMNS_SHOWN else ""
        raise PermanentError("MISSING_COLUMNS",
                             f"missing required columns: {', '.join(missing)} (found: {found}{more})")
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    # Bounded, as it goes into the job document: a hostile header may hold a hundred 100 kB names.
    return [name for name in named if name not in known][:COLUMNS_SHOWN]


def validate(sheet: Sheet, check: Callable[[], None] = lambda: None, check_every: int = 1000) -> Validated:
    """Every data row checked against `ProductRow`; `check()` is called every `check_every` rows."""
    check_columns(sheet.header)
    records: list[dict[str, Any]] = []
    errors: list[RowError] = []
    first_row_of_sku: dict[str, int] = {}
    for count, (number, cells) in enumerate(sheet.rows, start=1):
        if count % check_every == 0:
            check()
        row = _as_fields(sheet.header, cells)
        try:
            product = ProductRow.model_validate(row)
        except ValidationError as exc:
            errors.extend(_row_errors(number, exc, row))
            continue
        first = first_row_of_sku.setdefault(product.sku, number)
        if first != number:
            errors.append(RowError(number, "sku", f"duplicate SKU: already at row {first}", _shown(product.sku)))
            continue
        records.append(product.to_record(number))
    return Validated(records, errors)


def errors_csv(errors: Iterable[RowError]) -> bytes:
    """All row errors as CSV for a spreadsheet app, every cell defused against formula injection."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["row", "field", "message", "value"])
    for error in errors:
        writer.writerow([error.row, escape_formula(error.field), escape_formula(error.message),
                         escape_formula(error.value)])
    return out.getvalue().encode("utf-8-sig")  # the BOM makes Excel read UTF-8, not the locale's code page


def escape_formula(text: str | None) -> str:
    """A cell a spreadsheet shows as text: a leading quote before anything it would run as a formula."""
    if text is None:
        return ""
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def _as_fields(header: list[str], cells: Cells) -> dict[str, str]:
    # Blank cells are left out, so a blank required cell reads as "missing", not as "not a string".
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    return {name: cell for name, cell in zip(header, cells) if name in known and cell is not None}


def _row_errors(number: int, exc: ValidationError, row: dict[str, str]) -> Iterator[RowError]:
    for detail in exc.errors(include_url=False):
        field = str(detail["loc"][0]) if detail["loc"] else None
        if detail["type"] == "missing":
            yield RowError(number, field, f"Missing required field: {field}")
            continue
        message = str(detail["msg"]).removeprefix("Value error, ")
        yield RowError(number, field, message, _shown(row.get(field or "")))


def _shown(value: str | None, limit: int = VALUE_SHOWN) -> str | None:
    if value is None:
        return None
    return value if len(value) <= limit else value[:limit] + "…"
