"""The emulator through a second client, Google's Node.js `@google-cloud/firestore`: each scenario is one that
client's system tests run against production, and each expectation is what production answered there. These
are the findings that driving the emulator with the Node client first exposed."""

from __future__ import annotations


def test_a_sum_or_average_that_overflows_is_infinity_not_an_internal_error(node_firestore):
    assert node_firestore("sumOverflow") == {"sum": "Infinity", "average": "Infinity"}


def test_numeric_document_ids_are_accepted_and_order_first_by_number(node_firestore):
    assert node_firestore("numericIds") == [
        "__id-9223372036854775808__", "__id-2__", "__id7__", "__id12__", "__id9223372036854775807__",
        "7", "A", "__id", "__id1_",
    ]


def test_nan_matches_no_range_filter(node_firestore):
    assert node_firestore("nanInRange") == {"lessOrEqual": ["doc1", "doc5", "doc6"], "multiField": ["doc5", "doc6"]}


def test_several_inequality_fields_order_by_field_then_name_whatever_the_filter_order(node_firestore):
    assert node_firestore("inequalityOrder") == {
        "keyFirst": ["doc2", "doc4", "doc5", "doc3"],
        "sortFirst": ["doc2", "doc4", "doc5", "doc3"],
        "withCursor": ["doc2", "doc4", "doc5", "doc3"],
        "nameLast": ["doc2", "doc4", "doc3"],
    }


def test_a_multi_field_aggregation_leaves_out_documents_lacking_a_field(node_firestore):
    assert node_firestore("multiFieldAggregation") == {
        "totalPages": 300, "averagePages": 100, "averageYear": 2007, "count": 3,
    }


def test_explain_plans_and_profiles_queries_and_aggregations(node_firestore):
    explained = node_firestore("explainQuery")

    assert explained["plan"] == {
        "indexesUsed": [{"query_scope": "Collection", "properties": "(foo ASC, __name__ ASC)"}],
        "stats": None, "snapshot": None,
    }
    assert explained["profile"] == {
        "indexesUsed": [{"query_scope": "Collection", "properties": "(foo ASC, __name__ ASC)"}],
        "size": 2, "resultsReturned": 2, "readOperations": 2, "durationPositive": True,
        "debugStatKeys": ["billing_details", "documents_scanned", "index_entries_scanned"],
    }
    assert explained["aggregate"] == {"count": 2, "resultsReturned": 1}


def test_deletes_with_exists_and_update_time_preconditions_succeed(node_firestore):
    assert node_firestore("deletePreconditions") == 0


def test_find_nearest_with_a_prefilter_threshold_and_distance_field(node_firestore):
    assert node_firestore("vectorSearch") == [["4", 0.1], ["2", 1], ["5", 5]]


def test_on_snapshot_sees_the_current_result_then_each_change_of_a_query(node_firestore):
    assert node_firestore("listenToQuery") == [
        {"ids": ["a", "b"], "changes": [["added", "a"], ["added", "b"]]},
        {"ids": ["d", "a", "b"], "changes": [["added", "d"]]},
        {"ids": ["d", "b", "a"], "changes": [["modified", "a"]]},
        {"ids": ["d", "a"], "changes": [["removed", "b"]]},
        {"ids": ["a"], "changes": [["removed", "d"]]},
    ]
