"""Aggregation queries through the official client, answered as production answers them (the expectations come
from the client libraries' system tests, which run against production)."""

from __future__ import annotations

import math
import sys

import pytest
from google.api_core import exceptions
from google.cloud.firestore_v1 import FieldFilter
from google.cloud.firestore_v1.aggregation import AggregationQuery

MAX_DOUBLE = sys.float_info.max
INT64_MAX = 2**63 - 1


def value(aggregation_query, alias: str):
    return next(r.value for r in aggregation_query.get()[0] if r.alias == alias)


@pytest.fixture
def products(firestore_client):
    """25 documents with random IDs: product = a * b for a, b in 0..4 (as the Python client's system test)."""
    collection = firestore_client.collection("products")
    for a in range(5):
        for b in range(5):
            collection.add({"a": a, "b": b, "stats": {"product": a * b}})
    return collection


def test_an_aggregation_query_with_no_aggregations_is_invalid_argument(products):
    with pytest.raises(exceptions.InvalidArgument, match="Aggregations can not be empty"):
        AggregationQuery(products._query()).get()


def test_duplicate_aliases_are_invalid_argument(products):
    with pytest.raises(exceptions.InvalidArgument, match="Aggregation aliases contain duplicate alias"):
        products.count(alias="total").count(alias="total").get()


def test_sum_and_avg_over_a_limit_take_the_documents_with_the_smallest_values(products):
    # Production orders the nested query by the aggregated field: the 12 smallest products are
    # [0]*9 + [1, 2, 2], whatever the random document IDs.
    assert value(products.sum("stats.product", alias="total"), "total") == 100
    assert value(products.limit(12).sum("stats.product", alias="total"), "total") == 5
    average = value(products.limit(12).avg("stats.product", alias="mean"), "mean")
    assert average == 5 / 12 and isinstance(average, float)


def test_count_over_a_limit_counts_the_limited_documents(products):
    assert value(products.where(filter=FieldFilter("a", "==", 1)).limit(2).count(alias="n"), "n") == 2


def test_a_document_lacking_one_aggregated_field_is_left_out_of_every_aggregation(firestore_client):
    books = firestore_client.collection("books")
    books.document("a").set({"pages": 100, "year": 1980})
    books.document("b").set({"pages": 50, "year": 2020})
    books.document("c").set({"pages": 150, "year": 2021})
    books.document("d").set({"pages": 50})  # no year

    query = books.sum("pages", alias="total").avg("pages", alias="mean").avg("year", alias="year")
    query = query.count(alias="n")
    results = {r.alias: r.value for r in query.get()[0]}

    assert results == {"total": 300, "mean": 100.0, "year": 2007.0, "n": 3}


def test_a_non_numeric_aggregated_field_is_skipped_by_the_sum_but_its_document_still_counts(firestore_client):
    ratings = firestore_client.collection("ratings")
    for doc_id, rating in {"a": 5, "b": 4, "c": "3", "d": 1}.items():
        ratings.document(doc_id).set({"rating": rating})

    results = {r.alias: r.value for r in ratings.sum("rating", alias="total").count(alias="n").get()[0]}

    assert results == {"total": 10, "n": 4}


@pytest.mark.parametrize(
    ("ratings", "expected"),
    [
        ([MAX_DOUBLE, MAX_DOUBLE], math.inf),
        ([MAX_DOUBLE, 1e293], math.inf),
        ([-MAX_DOUBLE, -MAX_DOUBLE], -math.inf),
        ([INT64_MAX, INT64_MAX], 2.0**64),
    ],
)
def test_a_sum_that_overflows_answers_infinity_or_a_double_not_an_error(firestore_client, ratings, expected):
    collection = firestore_client.collection("big")
    for i, rating in enumerate(ratings):
        collection.document(f"d{i}").set({"rating": rating})

    assert value(collection.sum("rating", alias="s"), "s") == expected


def test_an_average_that_overflows_while_summing_is_infinity(firestore_client):
    collection = firestore_client.collection("big")
    collection.document("a").set({"rating": MAX_DOUBLE})
    collection.document("b").set({"rating": MAX_DOUBLE})

    assert value(collection.avg("rating", alias="m"), "m") == math.inf


def test_infinities_of_both_signs_sum_to_nan(firestore_client):
    collection = firestore_client.collection("big")
    collection.document("a").set({"rating": math.inf})
    collection.document("b").set({"rating": -math.inf})

    assert math.isnan(value(collection.sum("rating", alias="s"), "s"))


def test_an_explicit_order_by_name_with_a_cursor_still_sums_after_the_cursor(firestore_client):
    # The Node client's "orderBy normalization" case: orderBy(num).startAfter(snapshot) sends num, __name__.
    collection = firestore_client.collection("nums")
    collection.document("a").set({"num": 5})
    collection.document("b").set({"num": 7})

    query = collection.order_by("num").start_after(collection.document("a").get())

    assert value(query.sum("num", alias="s"), "s") == 7
