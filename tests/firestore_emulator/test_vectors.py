"""Vector values and find_nearest through the official client, as production answers them (expectations from the
Python and Node clients' system tests and the FindNearest API reference)."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud.firestore_v1 import FieldFilter
from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
from google.cloud.firestore_v1.vector import Vector

EUCLIDEAN, COSINE, DOT_PRODUCT = DistanceMeasure.EUCLIDEAN, DistanceMeasure.COSINE, DistanceMeasure.DOT_PRODUCT


def nearest(query, measure, *, query_vector=(10.0, 10.0), limit=3, **options):
    return query.find_nearest(
        vector_field=options.pop("field", "embedding"), query_vector=Vector(query_vector),
        distance_measure=measure, limit=limit, **options,
    )


def embeddings(results, field="embedding") -> list[tuple[float, ...]]:
    return [tuple(snapshot.get(field)) for snapshot in results]


@pytest.fixture
def docs(firestore_client):
    collection = firestore_client.collection("vectors")
    rows = [
        {"foo": "bar"},
        {"foo": "xxx", "embedding": Vector([10, 10])},
        {"foo": "bar", "embedding": Vector([1, 1])},
        {"foo": "bar", "embedding": Vector([10, 0])},
        {"foo": "bar", "embedding": Vector([20, 0])},
        {"foo": "bar", "embedding": Vector([100, 100])},
    ]
    for i, row in enumerate(rows):
        collection.document(f"d{i}").set(row)
    return collection


def test_a_vector_round_trips_and_is_not_a_plain_map_or_array(firestore_client):
    ref = firestore_client.collection("vectors").document("v")
    ref.set({"embedding": Vector([0.5, 1.0, -2.0])})

    assert ref.get().get("embedding") == Vector([0.5, 1.0, -2.0])


@pytest.mark.parametrize(
    ("measure", "expected"),
    [
        (EUCLIDEAN, [(10.0, 0.0), (1.0, 1.0), (20.0, 0.0)]),
        (DOT_PRODUCT, [(100.0, 100.0), (20.0, 0.0), (10.0, 0.0)]),
    ],
)
def test_find_nearest_ranks_the_prefiltered_documents_by_the_measure(docs, measure, expected):
    results = nearest(docs.where(filter=FieldFilter("foo", "==", "bar")), measure).get()

    assert embeddings(results) == expected


def test_find_nearest_by_cosine_distance_ignores_magnitude(docs):
    results = embeddings(nearest(docs.where(filter=FieldFilter("foo", "==", "bar")), COSINE).get())

    assert set(results[:2]) == {(1.0, 1.0), (100.0, 100.0)}  # same direction as the query: distance 0
    assert results[2] in {(10.0, 0.0), (20.0, 0.0)}


@pytest.mark.parametrize(
    ("measure", "vectors", "expected"),
    [
        (EUCLIDEAN, [[2, 0], [1, 100], [1, -0.1], [4, 4]], [0.1, 1.0, 5.0, 100.0]),
        (COSINE, [[1, 0], [0, 1], [0, -0.1], [-1, 0]], [0.0, 1.0, 1.0, 2.0]),
        (DOT_PRODUCT, [[2, 0], [1, 100], [-20, 0], [0.1, 4]], [2.0, 1.0, 0.1, -20.0]),
    ],
)
def test_distance_result_field_holds_each_documents_distance(firestore_client, measure, vectors, expected):
    collection = firestore_client.collection("vectors")
    collection.document("none").set({"foo": "bar"})
    for i, vector in enumerate(vectors):
        collection.document(f"d{i}").set({"embedding": Vector(vector), "distance": "100 miles"})

    results = nearest(collection, measure, query_vector=(1.0, 0.0), limit=5, distance_result_field="distance").get()

    assert [snapshot.get("distance") for snapshot in results] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("measure", "threshold", "expected"),
    [
        (EUCLIDEAN, 5.0, [(1.0, -0.1), (2.0, 0.0), (-3.0, 0.0), (4.0, 4.0)]),  # <= 5: the one at 5 stays
        (COSINE, 1.0, [(2.0, 0.0), (1.0, -0.1), (4.0, 4.0)]),  # (-1, 100) is just past 1
        (DOT_PRODUCT, 1.0, [(4.0, 4.0), (2.0, 0.0), (1.0, -0.1)]),
    ],
)
def test_distance_threshold_keeps_only_close_enough_documents(firestore_client, measure, threshold, expected):
    collection = firestore_client.collection("vectors")
    for i, vector in enumerate([[2, 0], [-1, 100], [1, -0.1], [4, 4], [-3, 0]]):
        collection.document(f"d{i}").set({"embedding": Vector(vector)})

    results = nearest(collection, measure, query_vector=(1.0, 0.0), limit=5, distance_threshold=threshold).get()

    assert embeddings(results) == expected


def test_documents_without_a_vector_of_the_query_dimension_are_skipped_silently(firestore_client):
    collection = firestore_client.collection("vectors")
    rows = [{"foo": "bar"}, {"embedding": [10, 10]}, {"embedding": "not a vector"}, {"embedding": None},
            {"embedding": Vector([10])}, {"embedding": Vector([9, 9])}, {"embedding": Vector([50, 50])}]
    for i, row in enumerate(rows):
        collection.document(f"d{i}").set(row)

    assert embeddings(nearest(collection, EUCLIDEAN, limit=100).get()) == [(9.0, 9.0), (50.0, 50.0)]
    assert nearest(collection, EUCLIDEAN, field="missing").get() == []


def test_find_nearest_on_a_nested_field_in_a_collection_group_with_a_projection(firestore_client):
    for path, vector in {"a/x/items/1": [10, 10], "items/2": [1, 1], "b/y/items/3": [20, 0]}.items():
        firestore_client.document(path).set({"n": {"embedding": Vector(vector)}, "name": path})

    query = firestore_client.collection_group("items").select(["name"])
    results = nearest(query, EUCLIDEAN, field="n.embedding").get()

    assert [snapshot.to_dict() for snapshot in results] == [
        {"name": "a/x/items/1"}, {"name": "items/2"}, {"name": "b/y/items/3"},
    ]


def test_limit_caps_the_neighbours(docs):
    assert len(nearest(docs, EUCLIDEAN, limit=2).get()) == 2
    assert len(nearest(docs, EUCLIDEAN, limit=1000).get()) == 5


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_a_limit_outside_1_to_1000_is_invalid_argument(docs, limit):
    with pytest.raises(exceptions.InvalidArgument, match="limit must be between 1 and 1000"):
        nearest(docs, EUCLIDEAN, limit=limit).get()


def test_a_query_vector_of_more_than_2048_dimensions_is_invalid_argument(docs):
    with pytest.raises(exceptions.InvalidArgument, match="2049 dimensions"):
        nearest(docs, EUCLIDEAN, query_vector=[1.0] * 2049).get()


def test_a_query_vector_that_is_not_a_vector_is_invalid_argument(firestore_client, docs):
    request = {"parent": firestore_client._database_string + "/documents",
               "structured_query": nearest(docs, EUCLIDEAN)._to_protobuf()}
    request["structured_query"].find_nearest.query_vector.string_value = "not a vector"
    with pytest.raises(exceptions.InvalidArgument, match="query_vector must be a vector value"):
        list(firestore_client._firestore_api.run_query(request=request))


def test_a_cursor_on_a_vector_query_is_invalid_argument(docs):
    query = docs.order_by("foo").start_at({"foo": "bar"})
    with pytest.raises(exceptions.InvalidArgument, match="cursors are not supported"):
        nearest(query, EUCLIDEAN).get()


def test_a_malformed_vector_value_is_invalid_argument(firestore_client):
    ref = firestore_client.collection("vectors").document("bad")
    with pytest.raises(exceptions.InvalidArgument, match="vector value"):
        ref.set({"embedding": {"__type__": "__vector__", "value": "not an array"}})
    with pytest.raises(exceptions.InvalidArgument, match="vector value"):
        ref.set({"embedding": {"__type__": "__vector__", "value": [1.0], "extra": 1}})
