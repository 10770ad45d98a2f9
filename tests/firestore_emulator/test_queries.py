"""Queries and aggregations through the official client, end to end (the query semantics themselves are
unit-tested with the core in test_query.py; these prove the server serves them as the client expects)."""

from __future__ import annotations

import pytest
from google.cloud.firestore_v1 import FieldFilter, Or


@pytest.fixture
def cities(firestore_client):
    rows = {
        "SF": {"name": "San Francisco", "state": "CA", "pop": 860, "tags": ["west", "tech"]},
        "LA": {"name": "Los Angeles", "state": "CA", "pop": 3900, "tags": ["west"]},
        "DC": {"name": "Washington", "state": None, "pop": 680, "tags": ["east", "capital"]},
        "TOK": {"name": "Tokyo", "state": "TK", "pop": 9200, "tags": ["asia", "capital"]},
        "BJ": {"name": "Beijing", "state": "BJ", "pop": 21500, "tags": ["asia", "capital"]},
    }
    collection = firestore_client.collection("cities")
    for doc_id, data in rows.items():
        collection.document(doc_id).set(data)
    return collection


def ids(query) -> list[str]:
    return [snapshot.id for snapshot in query.stream()]


def test_where_equality_and_range(cities):
    assert sorted(ids(cities.where(filter=FieldFilter("state", "==", "CA")))) == ["LA", "SF"]
    assert ids(cities.where(filter=FieldFilter("pop", ">", 1000)).order_by("pop")) == ["LA", "TOK", "BJ"]


def test_or_in_and_not_in(cities):
    either = cities.where(filter=Or([FieldFilter("state", "==", "TK"), FieldFilter("pop", "<", 700)]))
    assert sorted(ids(either)) == ["DC", "TOK"]
    assert sorted(ids(cities.where(filter=FieldFilter("state", "in", ["BJ", "TK"])))) == ["BJ", "TOK"]
    # not-in leaves out documents whose field is null, as production does
    assert sorted(ids(cities.where(filter=FieldFilter("state", "not-in", ["CA"])))) == ["BJ", "TOK"]


def test_array_contains_and_array_contains_any(cities):
    assert sorted(ids(cities.where(filter=FieldFilter("tags", "array_contains", "capital")))) == ["BJ", "DC", "TOK"]
    any_of = cities.where(filter=FieldFilter("tags", "array_contains_any", ["tech", "east"]))
    assert sorted(ids(any_of)) == ["DC", "SF"]


def test_order_with_cursors_from_snapshots(cities):
    by_pop = cities.order_by("pop")
    la = cities.document("LA").get()

    assert ids(by_pop.start_after(la)) == ["TOK", "BJ"]
    assert ids(by_pop.start_at(la).end_before(cities.document("BJ").get())) == ["LA", "TOK"]
    assert ids(by_pop.end_at(la)) == ["DC", "SF", "LA"]


def test_offset_limit_and_limit_to_last(cities):
    by_pop = cities.order_by("pop")

    assert ids(by_pop.offset(1).limit(2)) == ["SF", "LA"]
    assert ids(by_pop.offset(10)) == []
    assert [s.id for s in by_pop.limit_to_last(2).get()] == ["TOK", "BJ"]


def test_offset_is_reported_as_skipped_results(firestore_client, cities):
    query = cities.order_by("pop").offset(3)
    responses = list(
        firestore_client._firestore_api.run_query(
            request={"parent": firestore_client._database_string + "/documents", "structured_query": query._to_protobuf()}
        )
    )

    assert responses[0].skipped_results == 3
    assert [r.document.name.rsplit("/", 1)[1] for r in responses if r.document.name] == ["TOK", "BJ"]


def test_select_returns_only_the_chosen_fields(cities):
    snapshot = next(cities.where(filter=FieldFilter("state", "==", "TK")).select(["name"]).stream())

    assert snapshot.to_dict() == {"name": "Tokyo"}


def test_collection_group_finds_collections_at_any_depth(firestore_client):
    firestore_client.collection("a").document("x").collection("landmarks").document("l1").set({"n": 1})
    firestore_client.collection("b").document("y").collection("landmarks").document("l2").set({"n": 2})
    firestore_client.collection("landmarks").document("l3").set({"n": 3})
    firestore_client.collection("a").document("x").collection("other").document("o").set({"n": 4})

    assert sorted(ids(firestore_client.collection_group("landmarks"))) == ["l1", "l2", "l3"]


def test_count_sum_and_avg(cities):
    query = cities.where(filter=FieldFilter("state", "==", "CA"))

    assert query.count(alias="n").get()[0][0].value == 2
    assert query.sum("pop", alias="s").get()[0][0].value == 4760
    assert query.avg("pop", alias="a").get()[0][0].value == pytest.approx(2380.0)


def test_query_without_matches_streams_nothing(cities):
    assert ids(cities.where(filter=FieldFilter("state", "==", "nowhere"))) == []

