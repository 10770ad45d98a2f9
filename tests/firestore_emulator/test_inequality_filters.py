"""Inequality filters through the official client: NaN is in no range, and several inequality fields order the
results implicitly by those fields lexicographically (`__name__` last), whatever the order of the filters, as
the Node client's system tests find production does."""

from __future__ import annotations

import math

import pytest
from google.cloud.firestore_v1 import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath


def ids(query) -> list[str]:
    return [s.id for s in query.stream()]


@pytest.fixture
def special(firestore_client):
    collection = firestore_client.collection("special")
    rows = {"doc1": {"key": "a", "sort": 0, "v": 0}, "doc2": {"key": "b", "sort": math.nan, "v": 1},
            "doc3": {"key": "c", "sort": None, "v": 3}, "doc4": {"key": "d", "v": 0},
            "doc5": {"key": "e", "sort": 1}, "doc6": {"key": "f", "sort": 1, "v": 1}}
    for doc_id, row in rows.items():
        collection.document(doc_id).set(row)
    return collection


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_nan_matches_no_range_filter(special, op):
    bound = 2 if op.startswith("<") else -2
    assert "doc2" not in ids(special.where(filter=FieldFilter("sort", op, bound)))


def test_nan_null_and_missing_values_are_left_out_of_a_multi_field_range(special):
    query = special.where(filter=FieldFilter("key", "!=", "a")).where(filter=FieldFilter("sort", "<=", 2))
    assert ids(query) == ["doc5", "doc6"]
    assert ids(query.where(filter=FieldFilter("v", "<=", 1))) == ["doc6"]


@pytest.fixture
def keyed(firestore_client):
    collection = firestore_client.collection("keyed")
    rows = {"doc1": {"key": "a", "sort": 0, "v": 5}, "doc2": {"key": "aa", "sort": 4, "v": 4},
            "doc3": {"key": "b", "sort": 3, "v": 3}, "doc4": {"key": "b", "sort": 2, "v": 2},
            "doc5": {"key": "b", "sort": 2, "v": 1}, "doc6": {"key": "b", "sort": 0, "v": 0}}
    for doc_id, row in rows.items():
        collection.document(doc_id).set(row)
    return collection


def test_several_inequality_fields_order_lexicographically_whatever_the_filter_order(keyed):
    key, sort, v = FieldFilter("key", "!=", "a"), FieldFilter("sort", ">", 1), FieldFilter("v", "in", [1, 2, 3, 4])
    # Implicitly ordered by key, sort, __name__.
    assert ids(keyed.where(filter=key).where(filter=sort).where(filter=v)) == ["doc2", "doc4", "doc5", "doc3"]
    assert ids(keyed.where(filter=sort).where(filter=key).where(filter=v)) == ["doc2", "doc4", "doc5", "doc3"]


def test_an_inequality_on_the_document_id_orders_last(firestore_client):
    collection = firestore_client.collection("keyed")
    for doc_id, row in {"doc1": {"key": "a", "sort": 5}, "doc2": {"key": "aa", "sort": 4},
                        "doc3": {"key": "b", "sort": 3}, "doc4": {"key": "b", "sort": 2},
                        "doc5": {"key": "bb", "sort": 1}}.items():
        collection.document(doc_id).set(row)
    name = FieldFilter(FieldPath.document_id(), "<", collection.document("doc5"))

    query = collection.where(filter=name).where(filter=FieldFilter("sort", ">=", 1))
    query = query.where(filter=FieldFilter("key", "!=", "a"))

    assert ids(query) == ["doc2", "doc4", "doc3"]  # key, sort, then __name__
    assert ids(query.order_by("sort", direction="DESCENDING")) == ["doc2", "doc3", "doc4"]
