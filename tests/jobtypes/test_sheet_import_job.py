"""sheet.import stage by stage against the Storage and Firestore emulators: upserts, reruns, errors, lost leases."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from google.cloud import firestore, storage
from pydantic import ValidationError

from oncetask.errors import LeaseLost, PermanentError
from catalog import products as sheet_import

from .builders import GOOD_ROWS, HEADER, csv_bytes, xlsx_bytes
from .conftest import JobRun


def upload(bucket: storage.Bucket, name: str, data: bytes) -> str:
    bucket.blob(name).upload_from_string(data)
    return f"gs://{bucket.name}/{name}"


def documents(db: firestore.Client, collection: str = "products") -> dict[str, dict]:
    return {doc.id: doc.to_dict() for doc in db.collection(collection).stream()}


def test_import_upserts_valid_rows_by_sku_and_reports_bad_rows(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun], firestore_client: firestore.Client) -> None:
    source = upload(gcs_bucket, "in/stock.csv", csv_bytes([HEADER, *GOOD_ROWS, ["D-4", "Shelf", -2, "9"]]))
    run = job_run("sheet.import", {"source": source}, job_id="job-stock")
    outputs = run.run_all()
    assert outputs["parse"] == {
        "format": "csv", "encoding": "utf-8", "data_rows": 4, "stopped_at_empty_run": None, "ignored_columns": [],
        "valid": 3, "invalid_rows": 1, "error_count": 1,
        "errors": [{"row": 5, "field": "quantity", "message": "Input should be greater than or equal to 0",
                    "value": "-2"}],
        "rows": run.uri("parse", "rows.jsonl"), "errors_csv": run.uri("parse", "errors.csv")}
    assert outputs["upsert"] == {"collection": "products", "upserted": 3, "batches": 1}
    assert outputs["report"] == {"report": run.uri("report", "report.json"), "imported": 3, "invalid_rows": 1}
    stored = documents(firestore_client)
    assert sorted(stored) == ["A-1", "B-2", "C-3"]
    lamp = stored["A-1"]
    assert {k: lamp[k] for k in ("name", "quantity", "price", "price_cents", "email", "source_row", "import_job")} == {
        "name": "Lamp", "quantity": 3, "price": "19.99", "price_cents": 1999, "email": "ops@example.com",
        "source_row": 2, "import_job": "job-stock"}
    assert lamp["imported_at"] is not None
    report = json.loads(run.artifacts("report").read(run.uri("report", "report.json")))
    assert (report["imported"], report["invalid_rows"], report["first_errors"][0]["row"]) == (3, 1, 5)


def test_rerunning_upsert_or_a_whole_new_job_never_duplicates_a_product(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun], firestore_client: firestore.Client) -> None:
    source = upload(gcs_bucket, "stock.xlsx", xlsx_bytes([HEADER, *GOOD_ROWS]))
    first = job_run("sheet.import", {"source": source, "collection": "catalogue"})
    first.run_all()
    first.rerun("upsert")
    second = job_run("sheet.import", {"source": source, "collection": "catalogue"})
    second.run_all()
    stored = documents(firestore_client, "catalogue")
    assert sorted(stored) == ["A-1", "B-2", "C-3"]
    assert {doc["import_job"] for doc in stored.values()} == {second.job_id}


def test_rerunning_parse_writes_the_same_artifacts_under_the_reruns_names(gcs_bucket: storage.Bucket,
                                                                          job_run: Callable[..., JobRun]) -> None:
    run = job_run("sheet.import", {"source": upload(gcs_bucket, "s.csv", csv_bytes([HEADER, *GOOD_ROWS, ["x/y"]]))})
    first = run.run("parse")
    before = run.contents()
    again = run.rerun("parse")
    assert again == {**first, "rows": run.uri("parse", "rows.jsonl", 2), "errors_csv": run.uri("parse", "errors.csv", 2)}
    assert run.contents() == before


def test_all_errors_go_to_the_csv_artifact_while_the_output_keeps_a_few(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun]) -> None:
    bad = [[f"S-{i}", "Desk", "lots", "1"] for i in range(30)]
    run = job_run("sheet.import", {"source": upload(gcs_bucket, "bad.csv", csv_bytes([HEADER, *bad]))})
    parsed = run.run("parse")
    assert (parsed["valid"], parsed["invalid_rows"], len(parsed["errors"])) == (0, 30, sheet_import.ERRORS_IN_OUTPUT)
    body = run.artifacts("parse").read(run.uri("parse", "errors.csv")).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert [row[:2] for row in table[1:]] == [[str(i + 2), "quantity"] for i in range(30)]


def test_errors_csv_artifact_defuses_a_formula_in_an_offending_value(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun]) -> None:
    rows = [HEADER, GOOD_ROWS[0], ["=1+1", "Lamp", "1", "1", ""]]
    run = job_run("sheet.import", {"source": upload(gcs_bucket, "evil.csv", csv_bytes(rows))})
    run.run("parse")
    body = run.artifacts("parse").read(run.uri("parse", "errors.csv")).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(body)))[1:] == [
        ["3", "sku", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", "'=1+1"]]


def test_formula_text_lands_in_firestore_as_text(gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun],
                                                 firestore_client: firestore.Client) -> None:
    rows = [HEADER, ["A-1", "=1+1", 1, "2", None], ["B-2", "=HYPERLINK(\"http://evil\")", 1, 2, None]]
    job_run("sheet.import", {"source": upload(gcs_bucket, "f.xlsx", xlsx_bytes(rows))}).run_all()
    assert {k: v["name"] for k, v in documents(firestore_client).items()} == {
        "A-1": "=1+1", "B-2": "=HYPERLINK(\"http://evil\")"}


def test_upsert_stops_between_batches_on_a_lost_lease_and_a_rerun_completes_without_duplicates(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun], firestore_client: firestore.Client) -> None:
    rows = [[f"SKU-{i:04d}", f"Item {i}", i, "1.00"] for i in range(1100)]
    run = job_run("sheet.import", {"source": upload(gcs_bucket, "many.csv", csv_bytes([HEADER[:4], *rows]))})
    run.run("parse")
    checks = 0

    def lease_lost_after_first_batch() -> None:
        nonlocal checks
        checks += 1
        if checks > 1:
            raise LeaseLost(message="another worker took the job")

    with pytest.raises(LeaseLost):
        run.run("upsert", check=lease_lost_after_first_batch)
    assert len(documents(firestore_client)) == sheet_import.BATCH_SIZE
    assert run.rerun("upsert") == {"collection": "products", "upserted": 1100, "batches": 3}
    assert len(documents(firestore_client)) == 1100


@pytest.mark.parametrize(("data", "code", "words"), [
    (csv_bytes([["sku", "name"], ["A-1", "Lamp"]]), "MISSING_COLUMNS", "missing required columns: quantity, price"),
    (b"", "EMPTY_FILE", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "NOT_A_SHEET", "binary data"),
    (b"sku,name\n\xff\xfe\xfd\x81", "UNKNOWN_ENCODING", "neither UTF-8 nor Windows-1252"),
])
def test_file_level_problems_fail_parse_permanently_and_write_nothing(
        gcs_bucket: storage.Bucket, job_run: Callable[..., JobRun], data: bytes, code: str, words: str) -> None:
    run = job_run("sheet.import", {"source": upload(gcs_bucket, "x.csv", data)})
    with pytest.raises(PermanentError) as caught:
        run.run("parse")
    assert caught.value.code == code and words in caught.value.message
    assert run.object_names() == []


@pytest.mark.parametrize(("payload", "problem"), [
    ({"source": "gs://in/x.csv", "collection": "jobs"}, "'jobs' is reserved for oncetask's own records"),
    ({"source": "gs://in/x.csv", "collection": "Results"}, "reserved"),
    ({"source": "gs://in/x.csv", "collection": "a/b"}, "String should match pattern"),
    ({"source": "gs://in/x.csv", "sheet": ""}, "at least 1 character"),
    ({"source": "s3://in/x.csv"}, "must be a gs://bucket/object URI"),
])
def test_bad_payload_is_refused_naming_the_problem(payload: dict, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        sheet_import.SheetImportPayload.model_validate(payload)
    assert problem in str(caught.value)
