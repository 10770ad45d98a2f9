"""Query explain through the official client (`explain_options=ExplainOptions(analyze=...)`): the plan alone, or
the results with execution stats, shaped as the Python client's system tests find production's."""

from __future__ import annotations

import pytest
from google.cloud.firestore_v1 import FieldFilter
from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
from google.cloud.firestore_v1.query_profile import ExplainOptions, QueryExplainError
from google.cloud.firestore_v1.vector import Vector


@pytest.fixture
def items(firestore_client):
    collection = firestore_client.collection("items")
    for i in range(5):
        collection.document(f"d{i}").set({"a": i % 2, "b": i, "embedding": Vector([i, 1.0])})
    return collection


def index_used(results) -> dict:
    (index,) = results.get_explain_metrics().plan_summary.indexes_used
    return dict(index)


def test_plan_without_analyze_returns_the_index_and_no_documents(items):
    results = items.where(filter=FieldFilter("a", "in", [1, 7])).get(explain_options=ExplainOptions(analyze=False))

    assert list(results) == []
    assert index_used(results) == {"query_scope": "Collection", "properties": "(a ASC, __name__ ASC)"}
    with pytest.raises(QueryExplainError, match="execution_stats not available"):
        results.get_explain_metrics().execution_stats


def test_analyze_returns_the_documents_and_their_execution_stats(items):
    results = items.where(filter=FieldFilter("a", "==", 1)).stream(explain_options=ExplainOptions(analyze=True))

    assert [s.id for s in results] == ["d1", "d3"]
    stats = results.get_explain_metrics().execution_stats
    assert stats.results_returned == 2 and stats.read_operations == 2
    assert stats.execution_duration.total_seconds() > 0
    assert {"billing_details", "documents_scanned", "index_entries_scanned"} <= set(stats.debug_stats)


def test_a_query_that_matches_nothing_still_costs_one_read(items):
    results = items.where(filter=FieldFilter("a", "==", 9)).get(explain_options=ExplainOptions(analyze=True))

    assert list(results) == []
    assert results.get_explain_metrics().execution_stats.read_operations == 1


def test_the_plan_lists_orders_with_their_directions_and_collection_groups(firestore_client, items):
    query = firestore_client.collection_group("items").where(filter=FieldFilter("a", "==", 1))
    results = query.order_by("b", direction="DESCENDING").get(explain_options=ExplainOptions(analyze=False))

    assert index_used(results) == {"query_scope": "Collection group", "properties": "(a ASC, b DESC, __name__ DESC)"}


def test_an_aggregation_explains_with_one_result_and_one_read(items):
    results = items.where(filter=FieldFilter("a", "==", 1)).count(alias="n").get(
        explain_options=ExplainOptions(analyze=True)
    )

    assert [[r.value for r in row] for row in results] == [[2]]
    metrics = results.get_explain_metrics()
    assert metrics.execution_stats.results_returned == 1 and metrics.execution_stats.read_operations == 1
    assert dict(metrics.plan_summary.indexes_used[0])["properties"] == "(a ASC, __name__ ASC)"


def test_an_aggregation_plan_without_analyze_has_no_result(items):
    results = items.sum("b", alias="s").get(explain_options=ExplainOptions(analyze=False))

    assert list(results) == []
    assert index_used(results)["properties"] == "(b ASC, __name__ ASC)"


def test_a_vector_query_plan_names_the_vector_index(items):
    query = items.where(filter=FieldFilter("a", "==", 1)).find_nearest(
        vector_field="embedding", query_vector=Vector([1.0, 1.0]), distance_measure=DistanceMeasure.EUCLIDEAN,
        limit=1,
    )
    results = query.get(explain_options=ExplainOptions(analyze=True))

    assert [s.id for s in results] == ["d1"]
    assert index_used(results)["properties"] == "(a ASC, __name__ ASC, embedding VECTOR<2>)"


def test_without_explain_options_there_are_no_metrics(items):
    with pytest.raises(QueryExplainError, match="explain_options not set"):
        items.get().get_explain_metrics()
