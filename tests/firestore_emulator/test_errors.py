"""Malformed requests get INVALID_ARGUMENT naming the problem, unsupported RPCs UNIMPLEMENTED, injected
faults the chosen code; and the server keeps serving after each."""

from __future__ import annotations

import datetime

import pytest
from google.api_core import exceptions

from fixtures.firestore import firestore_client_for


@pytest.fixture
def api(firestore_client):
    """The client's generated layer: sends exactly the request given, so malformed ones reach the server."""
    return firestore_client._firestore_api


def _root(client) -> str:
    return client._database_string + "/documents"


def test_document_name_with_odd_segments_is_invalid_argument(api, firestore_client):
    with pytest.raises(exceptions.InvalidArgument, match="c/d/e"):
        api.get_document(request={"name": _root(firestore_client) + "/c/d/e"})


def test_malformed_database_is_invalid_argument(api):
    with pytest.raises(exceptions.InvalidArgument, match="projects/only"):
        api.commit(request={"database": "projects/only", "writes": []})


def test_write_without_operation_is_invalid_argument(api, firestore_client):
    with pytest.raises(exceptions.InvalidArgument, match="no operation"):
        api.commit(request={"database": firestore_client._database_string, "writes": [{}]})


def test_write_into_another_database_is_invalid_argument(api, firestore_client):
    foreign = "projects/elsewhere/databases/(default)/documents/c/d"
    with pytest.raises(exceptions.InvalidArgument, match="is not in database"):
        api.commit(request={"database": firestore_client._database_string, "writes": [{"update": {"name": foreign}}]})


def test_unknown_transaction_is_invalid_argument(api, firestore_client):
    with pytest.raises(exceptions.InvalidArgument, match="invalid or expired"):
        api.get_document(request={"name": _root(firestore_client) + "/c/d", "transaction": b"no-such-thing"})
    with pytest.raises(exceptions.InvalidArgument, match="invalid or expired"):
        api.rollback(request={"database": firestore_client._database_string, "transaction": b"no-such-thing"})


def test_transaction_of_another_database_is_invalid_argument(api, firestore_emulator, firestore_client):
    other = firestore_client_for(firestore_emulator, firestore_client.project + "-other")
    foreign = other._firestore_api.begin_transaction(request={"database": other._database_string}).transaction

    with pytest.raises(exceptions.InvalidArgument, match="invalid or expired"):
        api.commit(request={"database": firestore_client._database_string, "writes": [], "transaction": foreign})


def test_writes_in_a_read_only_transaction_are_invalid_argument(api, firestore_client):
    database = firestore_client._database_string
    read_only = api.begin_transaction(request={"database": database, "options": {"read_only": {}}}).transaction
    write = {"update": {"name": _root(firestore_client) + "/c/d"}}

    with pytest.raises(exceptions.InvalidArgument, match="read-only"):
        api.commit(request={"database": database, "writes": [write], "transaction": read_only})


def test_partition_query_is_unimplemented_and_the_server_keeps_serving(api, firestore_client):
    with pytest.raises(exceptions.MethodNotImplemented):
        list(api.partition_query(request={"parent": _root(firestore_client), "partition_count": 2}))

    firestore_client.collection("c").document("d").set({"still": "serving"})
    assert firestore_client.collection("c").document("d").get().get("still") == "serving"


def test_injected_fault_answers_the_chosen_code(start_firestore_emulator):
    emulator = start_firestore_emulator("--fault", "PERMISSION_DENIED:1.0", "--fault-seed", "7")
    client = firestore_client_for(emulator, "faulty")

    with pytest.raises(exceptions.PermissionDenied, match="injected fault"):
        client.collection("c").document("d").get()


def test_bad_fault_spec_stops_the_emulator_with_a_message(start_firestore_emulator):
    from oncetask_emulators.process import LaunchError

    with pytest.raises(LaunchError, match="NOPE"):
        start_firestore_emulator("--fault", "NOPE:0.5")


def test_read_time_in_the_future_is_invalid_argument(firestore_client):
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)

    with pytest.raises(exceptions.InvalidArgument, match="in the future"):
        firestore_client.collection("c").document("d").get(read_time=future)


def test_create_document_with_a_reserved_id_is_invalid_argument(api, firestore_client):
    with pytest.raises(exceptions.InvalidArgument, match="__reserved__"):
        api.create_document(
            request={"parent": _root(firestore_client), "collection_id": "c", "document_id": "__reserved__"}
        )


def test_create_document_without_an_id_picks_one(api, firestore_client):
    created = api.create_document(request={"parent": _root(firestore_client), "collection_id": "c"})

    assert len(created.name.rsplit("/", 1)[1]) == 20
    assert created.create_time == created.update_time
