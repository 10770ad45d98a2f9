"""`sheet.import` (seed 001): a product CSV/XLSX in Cloud Storage -> `parse` -> `upsert` -> `report`.

`parse` validates every row and writes two artifacts: the valid rows (`rows.jsonl`) and every row error
(`errors.csv`, defused against formula injection); its output keeps only counts and the first few errors, so the
job document stays small whatever the file holds. `upsert` writes the valid rows to Firestore with the SKU as
document ID, so a rerun, or a retry after a lost lease halfway, overwrites the same documents instead of adding
rows; each batch is fenced on the job's lease (`ctx.batch()`), so a worker whose batch arrives after it lost the
lease changes nothing, however much newer the data it would overwrite. `report` writes a JSON summary.
"""

from __future__ import annotations

import json
from typing import Any

from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field, field_validator

import oncetask
from oncetask import Context

# `sheets` and `product_rows` (openpyxl) are imported by the stage that uses them: the API and cleanup functions,
# which load this module for the payload model, never import openpyxl, and start faster for it.
from .sources import GsUri, read_source

MAX_SOURCE_BYTES = 20 * 1024 * 1024
BATCH_SIZE = 499  # Firestore's limit of writes in one commit, less the one that fences the batch
ERRORS_IN_OUTPUT = 20  # errors kept in the stage output (the job document); all of them are in errors.csv
RESERVED_COLLECTIONS = frozenset({"jobs", "results", "failed_tasks"})  # oncetask's own records


class SheetImportPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: GsUri = Field(description="The file: gs://bucket/object, CSV (UTF-8 or Windows-1252) or XLSX.")
    collection: str = Field("products", pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,99}$",
                            description="Top-level Firestore collection the products are upserted into.")
    sheet: str | None = Field(None, min_length=1, max_length=31,
                              description="XLSX worksheet to read; default the first.")

    @field_validator("collection")
    @classmethod
    def _not_oncetasks_own(cls, collection: str) -> str:
        # An import must never be able to overwrite job records: that would let a payload forge a job's state.
        if collection.lower() in RESERVED_COLLECTIONS:
            raise ValueError(f"{collection!r} is reserved for oncetask's own records")
        return collection


app = oncetask.App("catalog.products")
sheet_import = app.job("sheet.import", payload=SheetImportPayload, stage_timeout=300,
                       description="A product CSV/XLSX in Cloud Storage -> validated rows upserted into Firestore.")


@sheet_import.stage
def parse(ctx: Context[SheetImportPayload]) -> dict:
    payload = ctx.payload
    data = read_source(ctx, payload.source, MAX_SOURCE_BYTES)
    from . import product_rows, sheets  # noqa: PLC0415 - see the module's imports

    sheet = sheets.read_sheet(data, payload.sheet)
    ignored = product_rows.check_columns(sheet.header)
    result = product_rows.validate(sheet, ctx.check)
    rows_body = "".join(json.dumps(record, sort_keys=True) + "\n" for record in result.records).encode()
    rows_uri = ctx.artifacts.write("rows.jsonl", rows_body, "application/x-ndjson")
    errors_uri = ctx.artifacts.write("errors.csv", product_rows.errors_csv(result.errors), "text/csv")
    return {
        "format": sheet.format,
        "encoding": sheet.encoding,
        "data_rows": sheet.stats.data_rows,
        "stopped_at_empty_run": sheet.stats.stopped_at_empty_run,
        "ignored_columns": ignored,
        "valid": len(result.records),
        "invalid_rows": len({error.row for error in result.errors}),
        "error_count": len(result.errors),
        "errors": [_short(error.to_dict()) for error in result.errors[:ERRORS_IN_OUTPUT]],
        "rows": rows_uri,
        "errors_csv": errors_uri,
    }


@sheet_import.stage
def upsert(ctx: Context[SheetImportPayload]) -> dict:
    payload = ctx.payload
    parsed = ctx.outputs["parse"]
    records = [json.loads(line) for line in ctx.artifacts.read(parsed["rows"]).splitlines() if line]
    collection = ctx.firestore.collection(payload.collection)
    batches = 0
    for start in range(0, len(records), BATCH_SIZE):
        # A worker that lost its lease stops here, or its fenced batch is refused whenever it arrives; what it
        # committed before is what the new owner writes again (same IDs, same data), so nothing is duplicated.
        ctx.check()
        batch = ctx.batch()
        for record in records[start:start + BATCH_SIZE]:
            batch.set(collection.document(record["sku"]), _document(record, payload.source, ctx.job_id))
        batch.commit()
        batches += 1
    return {"collection": payload.collection, "upserted": len(records), "batches": batches}


@sheet_import.stage
def report(ctx: Context[SheetImportPayload]) -> dict:
    payload = ctx.payload
    parsed = ctx.outputs["parse"]
    upserted = ctx.outputs["upsert"]
    summary = {
        "job_id": ctx.job_id,
        "source": payload.source,
        "collection": payload.collection,
        "data_rows": parsed["data_rows"],
        "imported": upserted["upserted"],
        "invalid_rows": parsed["invalid_rows"],
        "error_count": parsed["error_count"],
        "first_errors": parsed["errors"],
        "errors_csv": parsed["errors_csv"],
        "ignored_columns": parsed["ignored_columns"],
        "stopped_at_empty_run": parsed["stopped_at_empty_run"],
    }
    body = json.dumps(summary, indent=2, sort_keys=True).encode()
    uri = ctx.artifacts.write("report.json", body, "application/json")
    return {"report": uri, "imported": upserted["upserted"], "invalid_rows": parsed["invalid_rows"]}


def _document(record: dict[str, Any], source: str, job_id: str) -> dict[str, Any]:
    fields = {key: value for key, value in record.items() if key != "row"}
    return {**fields, "source": source, "source_row": record["row"], "import_job": job_id,
            "imported_at": firestore.SERVER_TIMESTAMP}


def _short(error: dict[str, Any]) -> dict[str, Any]:
    """An error as kept in the job document: long messages cut, so twenty of them stay a few kilobytes."""
    return {key: value[:300] if isinstance(value, str) else value for key, value in error.items()}


