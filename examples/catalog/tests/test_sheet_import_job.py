"""sheet.import stage by stage (`oncetask_runner.stages`) against the Storage and Firestore emulators: upserts,
reruns, errors, lost leases. The whole job through the processor is in test_jobs.py."""

from __future__ import annotations

import csv
import io
import json

import pytest
from pydantic import ValidationError

from oncetask import LeaseLost, PermanentError
from oncetask_dev.testing import Runner

from builders import GOOD_ROWS, HEADER, csv_bytes, xlsx_bytes
from catalog import products as sheet_import


def test_import_upserts_valid_rows_by_sku_and_reports_bad_rows(oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("in/stock.csv", csv_bytes([HEADER, *GOOD_ROWS, ["D-4", "Shelf", -2, "9"]]))
    run = oncetask_runner.stages("sheet.import", {"source": source}, job_id="job-stock")
    outputs = run.run_all()
    assert outputs["parse"] == {
        "format": "csv", "encoding": "utf-8", "data_rows": 4, "stopped_at_empty_run": None, "ignored_columns": [],
        "valid": 3, "invalid_rows": 1, "error_count": 1,
        "errors": [{"row": 5, "field": "quantity", "message": "Input should be greater than or equal to 0",
                    "value": "-2"}],
        "rows": run.uri("parse", "rows.jsonl"), "errors_csv": run.uri("parse", "errors.csv")}
    assert outputs["upsert"] == {"collection": "products", "upserted": 3, "batches": 1}
    assert outputs["report"] == {"report": run.uri("report", "report.json"), "imported": 3, "invalid_rows": 1}
    stored = oncetask_runner.documents("products")
    assert sorted(stored) == ["A-1", "B-2", "C-3"]
    lamp = stored["A-1"]
    assert {k: lamp[k] for k in ("name", "quantity", "price", "price_cents", "email", "source_row", "import_job")} == {
        "name": "Lamp", "quantity": 3, "price": "19.99", "price_cents": 1999, "email": "ops@example.com",
        "source_row": 2, "import_job": "job-stock"}
    assert lamp["imported_at"] is not None
    report = json.loads(run.read(run.uri("report", "report.json")))
    assert (report["imported"], report["invalid_rows"], report["first_errors"][0]["row"]) == (3, 1, 5)


def test_rerunning_upsert_or_a_whole_new_job_never_duplicates_a_product(oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("stock.xlsx", xlsx_bytes([HEADER, *GOOD_ROWS]))
    first = oncetask_runner.stages("sheet.import", {"source": source, "collection": "catalogue"})
    first.run_all()
    first.rerun("upsert")
    second = oncetask_runner.stages("sheet.import", {"source": source, "collection": "catalogue"})
    second.run_all()
    stored = oncetask_runner.documents("catalogue")
    assert sorted(stored) == ["A-1", "B-2", "C-3"]
    assert {doc["import_job"] for doc in stored.values()} == {second.job_id}


def test_rerunning_parse_writes_the_same_artifacts_under_the_reruns_names(oncetask_runner: Runner) -> None:
    source = oncetask_runner.upload("s.csv", csv_bytes([HEADER, *GOOD_ROWS, ["x/y"]]))
    run = oncetask_runner.stages("sheet.import", {"source": source})
    first = run.run("parse")
    before = run.contents()
    again = run.rerun("parse")
    assert again == {**first, "rows": run.uri("parse", "rows.jsonl", 2),
                     "errors_csv": run.uri("parse", "errors.csv", 2)}
    assert run.contents() == before


def test_all_errors_go_to_the_csv_artifact_while_the_output_keeps_a_few(oncetask_runner: Runner) -> None:
    bad = [[f"S-{i}", "Desk", "lots", "1"] for i in range(30)]
    run = oncetask_runner.stages("sheet.import",
                                 {"source": oncetask_runner.upload("bad.csv", csv_bytes([HEADER, *bad]))})
    parsed = run.run("parse")
    assert (parsed["valid"], parsed["invalid_rows"], len(parsed["errors"])) == (0, 30, sheet_import.ERRORS_IN_OUTPUT)
    body = run.read(run.uri("parse", "errors.csv")).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert [row[:2] for row in table[1:]] == [[str(i + 2), "quantity"] for i in range(30)]


def test_errors_csv_artifact_defuses_a_formula_in_an_offending_value(oncetask_runner: Runner) -> None:
    rows = [HEADER, GOOD_ROWS[0], ["=1+1", "Lamp", "1", "1", ""]]
    run = oncetask_runner.stages("sheet.import", {"source": oncetask_runner.upload("evil.csv", csv_bytes(rows))})
    run.run("parse")
    body = run.read(run.uri("parse", "errors.csv")).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(body)))[1:] == [
        ["3", "sku", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", "'=1+1"]]


def test_formula_text_lands_in_firestore_as_text(oncetask_runner: Runner) -> None:
    rows = [HEADER, ["A-1", "=1+1", 1, "2", None], ["B-2", "=HYPERLINK(\"http://evil\")", 1, 2, None]]
    oncetask_runner.stages("sheet.import", {"source": oncetask_runner.upload("f.xlsx", xlsx_bytes(rows))}).run_all()
    assert {k: v["name"] for k, v in oncetask_runner.documents("products").items()} == {
        "A-1": "=1+1", "B-2": "=HYPERLINK(\"http://evil\")"}


def test_upsert_stops_between_batches_on_a_lost_lease_and_a_rerun_completes_without_duplicates(
        oncetask_runner: Runner) -> None:
    rows = [[f"SKU-{i:04d}", f"Item {i}", i, "1.00"] for i in range(1100)]
    source = oncetask_runner.upload("many.csv", csv_bytes([HEADER[:4], *rows]))
    run = oncetask_runner.stages("sheet.import", {"source": source})
    run.run("parse")
    checks = 0

    def lease_lost_after_first_batch() -> None:
        nonlocal checks
        checks += 1
        if checks > 1:
            raise LeaseLost(message="another worker took the job")

    with pytest.raises(LeaseLost):
        run.run("upsert", check=lease_lost_after_first_batch)
    assert len(oncetask_runner.documents("products")) == sheet_import.BATCH_SIZE
    assert run.rerun("upsert") == {"collection": "products", "upserted": 1100, "batches": 3}
    assert len(oncetask_runner.documents("products")) == 1100


@pytest.mark.parametrize(("data", "code", "words"), [
    (csv_bytes([["sku", "name"], ["A-1", "Lamp"]]), "MISSING_COLUMNS", "missing required columns: quantity, price"),
    (b"", "EMPTY_FILE", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "NOT_A_SHEET", "binary data"),
    (b"sku,name\n\xff\xfe\xfd\x81", "UNKNOWN_ENCODING", "neither UTF-8 nor Windows-1252"),
])
def test_file_level_problems_fail_parse_permanently_and_write_nothing(
        oncetask_runner: Runner, data: bytes, code: str, words: str) -> None:
    run = oncetask_runner.stages("sheet.import", {"source": oncetask_runner.upload("x.csv", data)})
    with pytest.raises(PermanentError) as caught:
        run.run("parse")
    assert caught.value.code == code and words in caught.value.message
    assert run.objects() == []


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
