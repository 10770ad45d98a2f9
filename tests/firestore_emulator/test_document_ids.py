"""Numeric document IDs (`__id<int64>__`), which production accepts although `__.*__` IDs are reserved, and
orders before every other ID by number (the Node client's system test against production shows both)."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud.firestore_v1.field_path import FieldPath

IDS = ["A", "a", "Aa", "7", "12", "__id7__", "__id12__", "__id-2__", "__id1_", "_id1__", "__id",
       "__id9223372036854775807__", "__id9223372036854775806__", "__id-9223372036854775808__",
       "__id-9223372036854775807__"]


def test_numeric_ids_are_accepted_and_order_first_by_number(firestore_client):
    collection = firestore_client.collection("ids")
    batch = firestore_client.batch()
    for doc_id in IDS:
        batch.set(collection.document(doc_id), {"a": 1})
    batch.commit()

    ordered = [s.id for s in collection.order_by(FieldPath.document_id()).stream()]

    assert ordered == [
        "__id-9223372036854775808__", "__id-9223372036854775807__", "__id-2__", "__id7__", "__id12__",
        "__id9223372036854775806__", "__id9223372036854775807__", "12", "7", "A", "Aa", "__id", "__id1_",
        "_id1__", "a",
    ]


@pytest.mark.parametrize("doc_id", ["__x__", "__id__", "__id9223372036854775808__", "__id1x__"])
def test_other_reserved_ids_are_invalid_argument(firestore_client, doc_id):
    with pytest.raises(exceptions.InvalidArgument, match="reserved"):
        firestore_client.collection("ids").document(doc_id).set({"a": 1})


def test_a_numeric_collection_id_is_still_reserved(firestore_client):
    with pytest.raises(exceptions.InvalidArgument, match="reserved"):
        firestore_client.collection("__id7__").document("d").set({"a": 1})
