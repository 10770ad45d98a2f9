"""Listing, isolation between projects, and the HTTP side (wipe, call counters)."""

from __future__ import annotations

import urllib.request

import pytest

from fixtures.firestore import firestore_client_for


def test_list_collection_ids_at_root_and_under_a_document(firestore_client):
    firestore_client.collection("b").document("x").set({})
    firestore_client.collection("a").document("x").collection("sub").document("y").set({})

    assert [c.id for c in firestore_client.collections()] == ["a", "b"]
    assert [c.id for c in firestore_client.collection("a").document("x").collections()] == ["sub"]


def test_list_documents_includes_missing_parents_of_subcollections(firestore_client):
    people = firestore_client.collection("people")
    people.document("ann").set({"age": 30})
    people.document("ghost").collection("notes").document("n1").set({})

    listed = sorted(ref.id for ref in people.list_documents())

    assert listed == ["ann", "ghost"]
    assert not people.document("ghost").get().exists


def test_list_documents_pages_through_everything(firestore_client):
    things = firestore_client.collection("things")
    for i in range(7):
        things.document(f"t{i}").set({"i": i})

    listed = [ref.id for ref in things.list_documents(page_size=3)]

    assert listed == [f"t{i}" for i in range(7)]


def test_projects_do_not_see_each_other(firestore_emulator, firestore_client):
    other = firestore_client_for(firestore_emulator, firestore_client.project + "-other")
    firestore_client.collection("c").document("d").set({"mine": True})

    assert not other.collection("c").document("d").get().exists
    assert list(other.collections()) == []


def test_http_wipe_empties_one_database_only(firestore_emulator, firestore_client):
    other = firestore_client_for(firestore_emulator, firestore_client.project + "-kept")
    firestore_client.collection("c").document("d").set({"n": 1})
    other.collection("c").document("d").set({"n": 1})

    firestore_emulator.wipe(firestore_client.project)

    assert not firestore_client.collection("c").document("d").get().exists
    assert other.collection("c").document("d").get().exists


def test_stats_count_calls_per_database(firestore_emulator, firestore_client):
    if firestore_emulator.http is None:
        pytest.skip("call counters are ours: the external emulator in FIRESTORE_EMULATOR_HOST has none")
    ref = firestore_client.collection("c").document("d")
    ref.set({"n": 1})
    ref.get()
    ref.get()

    calls = firestore_emulator.stats(firestore_client.project)

    assert calls == {"Commit": 1, "BatchGetDocuments": 2}
    url = f"http://{firestore_emulator.http}/emulator/v1/stats?database=projects/{firestore_client.project}/databases/(default)"
    urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=5).read()
    assert firestore_emulator.stats(firestore_client.project) == {}
