"""Document reads and writes through the official client: values, merges, preconditions, batches, BulkWriter."""

from __future__ import annotations

import datetime

import pytest
from google.api_core import exceptions
from google.cloud import firestore
from google.cloud.firestore_v1 import GeoPoint


def test_every_value_type_round_trips(firestore_client):
    ref = firestore_client.collection("kinds").document("all")
    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.timezone.utc)
    data = {
        "null": None,
        "bool": True,
        "int": -(2**63),
        "double": 1.5,
        "timestamp": when,
        "string": "héllo",
        "bytes": b"\x00\xff",
        "reference": firestore_client.document("other/doc"),
        "geo": GeoPoint(51.5, -0.12),
        "array": [1, "two", {"three": 3}],
        "map": {"nested": {"deeper": [True]}},
    }
    ref.set(data)

    got = ref.get().to_dict()

    assert got.pop("reference").path == "other/doc"
    assert got.pop("timestamp") == when
    assert got == {k: v for k, v in data.items() if k not in ("reference", "timestamp")}


def test_set_with_merge_keeps_other_fields(firestore_client):
    ref = firestore_client.collection("c").document("d")
    ref.set({"a": 1, "m": {"x": 1, "y": 2}})

    ref.set({"b": 2, "m": {"y": 20}}, merge=True)

    assert ref.get().to_dict() == {"a": 1, "b": 2, "m": {"x": 1, "y": 20}}


def test_update_of_nested_field_path_and_delete_field(firestore_client):
    ref = firestore_client.collection("c").document("d")
    ref.set({"m": {"x": 1, "y": 2}, "gone": True})

    ref.update({"m.x": 10, "gone": firestore.DELETE_FIELD})

    assert ref.get().to_dict() == {"m": {"x": 10, "y": 2}}


def test_documents_have_create_and_update_times(firestore_client):
    ref = firestore_client.collection("c").document("d")
    first = ref.set({"n": 1})
    second = ref.set({"n": 2})

    snapshot = ref.get()

    assert snapshot.create_time == first.update_time
    assert snapshot.update_time == second.update_time > first.update_time


def test_write_that_changes_nothing_commits_and_keeps_update_time(firestore_client):
    ref = firestore_client.collection("c").document("d")
    first = ref.set({"n": 1})

    again = ref.set({"n": 1})

    assert again.update_time == first.update_time
    assert ref.get().update_time == first.update_time


def test_delete_removes_the_document(firestore_client):
    ref = firestore_client.collection("c").document("d")
    ref.set({"n": 1})

    ref.delete()

    assert not ref.get().exists


def test_second_create_with_same_name_is_already_exists(firestore_client):
    ref = firestore_client.collection("c").document("d")
    ref.create({"n": 1})

    with pytest.raises(exceptions.AlreadyExists, match="Document already exists: .*/documents/c/d"):
        ref.create({"n": 2})


def test_update_of_missing_document_is_not_found(firestore_client):
    ref = firestore_client.collection("c").document("missing")

    with pytest.raises(exceptions.NotFound, match="No document to update: .*/documents/c/missing"):
        ref.update({"n": 1})


def test_stale_update_time_precondition_is_failed_precondition(firestore_client):
    ref = firestore_client.collection("c").document("d")
    stale = ref.set({"n": 1}).update_time
    ref.set({"n": 2})

    with pytest.raises(exceptions.FailedPrecondition):
        ref.update({"n": 3}, option=firestore_client.write_option(last_update_time=stale))
    assert ref.get().get("n") == 2


def test_matching_update_time_precondition_writes(firestore_client):
    ref = firestore_client.collection("c").document("d")
    current = ref.set({"n": 1}).update_time

    ref.update({"n": 2}, option=firestore_client.write_option(last_update_time=current))

    assert ref.get().get("n") == 2


def test_server_timestamp_and_increment_transforms(firestore_client):
    ref = firestore_client.collection("c").document("d")
    ref.set({"n": 1})

    result = ref.update({"n": firestore.Increment(4), "at": firestore.SERVER_TIMESTAMP})

    snapshot = ref.get()
    assert snapshot.get("n") == 5
    assert snapshot.get("at") == result.update_time


def test_batch_applies_all_writes_at_one_commit_time(firestore_client):
    batch = firestore_client.batch()
    refs = [firestore_client.collection("c").document(str(i)) for i in range(3)]
    for i, ref in enumerate(refs):
        batch.set(ref, {"i": i})

    results = batch.commit()

    assert len({r.update_time for r in results}) == 1
    assert [ref.get().get("i") for ref in refs] == [0, 1, 2]


def test_batch_with_one_failing_precondition_writes_nothing(firestore_client):
    existing = firestore_client.collection("c").document("existing")
    existing.set({"n": 1})
    fresh = firestore_client.collection("c").document("fresh")
    batch = firestore_client.batch()
    batch.set(fresh, {"n": 1})
    batch.create(existing, {"n": 2})

    with pytest.raises(exceptions.AlreadyExists):
        batch.commit()

    assert not fresh.get().exists
    assert existing.get().get("n") == 1


def test_document_over_one_mebibyte_is_refused(firestore_client):
    ref = firestore_client.collection("c").document("big")

    with pytest.raises(exceptions.InvalidArgument, match="exceeds the maximum allowed size"):
        ref.set({"blob": b"x" * (1024 * 1024 + 1)})
    assert not ref.get().exists


def test_bulk_writer_reports_each_write_on_its_own(firestore_client):
    existing = firestore_client.collection("bulk").document("existing")
    existing.set({"n": 0})
    failures: list[str] = []
    writer = firestore_client.bulk_writer()
    writer.on_write_error(lambda error, _writer: failures.append(error.operation.reference.id) and False)
    for i in range(20):
        writer.set(firestore_client.collection("bulk").document(f"d{i}"), {"i": i})
    writer.create(existing, {"n": 1})

    writer.close()

    assert failures == ["existing"]
    assert len(list(firestore_client.collection("bulk").stream())) == 21
    assert existing.get().get("n") == 0


def test_writing_a_double_over_an_equal_integer_stores_the_double(firestore_client):
    ref = firestore_client.collection("numbers").document("n")
    ref.set({"value": 3})
    ref.set({"value": 3.0})
    stored = ref.get().to_dict()["value"]
    assert stored == 3.0 and isinstance(stored, float)
