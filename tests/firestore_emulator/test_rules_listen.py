"""Security rules on Listen: an end user's listener sees only what the rules allow. A target the rules deny is
removed with PERMISSION_DENIED as its cause (production's answer), the stream and its other targets go on.

Raw streams (through the official client's GAPIC `listen`, as an end user) show the messages; `on_snapshot`
shows what the client makes of them."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud.firestore_v1 import FieldFilter

from fixtures.firestore_rules import end_user_client, load_rules
from listening import RawListen, Snapshots, docs_target, kind, query_target, summary

PERMISSION_DENIED = 7
DENIED = "Missing or insufficient permissions."

OWNER_RULES = """rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /notes/{note} {
      allow read: if request.auth != null && resource.data.owner == request.auth.uid;
      allow write: if true;
    }
  }
}
"""


def rules_for(condition: str) -> str:
    return ("rules_version = '2';\nservice cloud.firestore {\n  match /databases/{database}/documents {\n"
            f"    match /{{document=**}} {{\n      allow read, write: if {condition};\n    }}\n  }}\n}}\n")


@pytest.fixture
def notes(firestore_emulator, firestore_project, firestore_client):
    """OWNER_RULES for the project, and two notes written by the server client: alice's and bob's."""
    load_rules(firestore_emulator, firestore_project, OWNER_RULES)
    firestore_client.document("notes/a1").set({"owner": "alice", "text": "mine"})
    firestore_client.document("notes/b1").set({"owner": "bob", "text": "secret"})
    return firestore_client.collection("notes")


@pytest.fixture
def open_stream():
    opened: list[RawListen] = []

    def open_(client) -> RawListen:
        stream = RawListen(client)
        opened.append(stream)
        return stream

    yield open_
    for stream in opened:
        stream.close()


def assert_denied(response, target_id: int) -> None:
    assert summary([response]) == [("REMOVE", [target_id])]
    assert response.target_change.cause.code == PERMISSION_DENIED
    assert response.target_change.cause.message == DENIED


def texts(responses) -> list[str]:
    return [r.document_change.document.fields["text"].string_value
            for r in responses if kind(r) == "document_change"]


def test_a_document_target_the_rules_allow_is_served(notes, end_user, open_stream):
    alice = end_user("alice")
    stream = open_stream(alice)

    stream.add(1, **docs_target(alice, "notes/a1"))

    assert summary(stream.until_global()) == [
        ("ADD", [1]), ("document_change", "a1", [1], []), ("CURRENT", [1]), ("NO_CHANGE", [])]


def test_a_document_target_the_rules_deny_is_removed_with_permission_denied_and_nothing_sent(
        notes, end_user, open_stream):
    alice = end_user("alice")
    stream = open_stream(alice)

    stream.add(1, **docs_target(alice, "notes/b1"))

    assert_denied(stream.next(), 1)
    assert stream.quiet() == []


def test_a_query_target_is_allowed_only_if_its_filters_prove_the_rule(notes, end_user, open_stream):
    alice = end_user("alice")
    stream = open_stream(alice)

    stream.add(1, **query_target(alice, alice.collection("notes")))
    assert_denied(stream.next(), 1)

    stream.add(2, **query_target(alice, alice.collection("notes").where(filter=FieldFilter("owner", "==", "alice"))))
    assert summary(stream.until_global()) == [
        ("ADD", [2]), ("document_change", "a1", [2], []), ("CURRENT", [2]), ("NO_CHANGE", [])]


def test_a_denied_target_leaves_the_streams_other_targets_running(notes, end_user, open_stream):
    alice = end_user("alice")
    stream = open_stream(alice)
    stream.add(1, **docs_target(alice, "notes/a1"))
    stream.until_global()

    stream.add(2, **docs_target(alice, "notes/b1"))
    assert_denied(stream.next(), 2)
    notes.document("a1").update({"text": "edited"})

    got = stream.until_global()
    assert summary(got) == [("document_change", "a1", [1], []), ("NO_CHANGE", [])]
    assert texts(got) == ["edited"]


def test_a_document_changed_so_that_the_rules_deny_it_is_not_sent_and_its_target_is_removed(
        notes, end_user, open_stream):
    alice = end_user("alice")
    stream = open_stream(alice)
    stream.add(1, **docs_target(alice, "notes/a1"))
    stream.until_global()

    notes.document("a1").set({"owner": "bob", "text": "handed over"})

    assert_denied(stream.next(), 1)
    assert "handed over" not in texts(stream.quiet())


def test_a_deleted_document_is_judged_as_a_get_of_a_missing_one(notes, firestore_emulator, firestore_project,
                                                               end_user, open_stream):
    """`resource == null` after a delete: a rule that allows it lets the listener see the delete, one that reads
    `resource.data` denies the target, as a get of the missing document would be denied."""
    alice = end_user("alice")
    denied = open_stream(alice)
    denied.add(1, **docs_target(alice, "notes/a1"))
    denied.until_global()
    notes.document("a1").delete()
    assert_denied(denied.next(), 1)

    load_rules(firestore_emulator, firestore_project, OWNER_RULES.replace(
        "allow read: if", "allow read: if resource == null ||"))
    notes.document("a2").set({"owner": "alice", "text": "next"})
    allowed = open_stream(alice)
    allowed.add(1, **docs_target(alice, "notes/a2"))
    allowed.until_global()
    notes.document("a2").delete()
    assert summary(allowed.until_global()) == [("document_delete", "a2", [1]), ("NO_CHANGE", [])]


def test_a_query_listener_proved_by_its_filter_keeps_listening_through_a_delete(notes, end_user, open_stream):
    """Rules are not filters: the query's proof covers every document it can return, deleted ones included."""
    alice = end_user("alice")
    stream = open_stream(alice)
    stream.add(1, **query_target(alice, alice.collection("notes").where(filter=FieldFilter("owner", "==", "alice"))))
    stream.until_global()

    notes.document("a1").delete()
    notes.document("a3").set({"owner": "alice", "text": "another"})

    assert summary(stream.until_global()) == [("document_delete", "a1", [1]), ("NO_CHANGE", [])]
    assert summary(stream.until_global()) == [("document_change", "a3", [1], []), ("NO_CHANGE", [])]


def test_rules_replaced_while_a_stream_is_open_apply_to_its_targets_before_the_next_change(
        firestore_emulator, firestore_project, firestore_client, end_user, open_stream):
    load_rules(firestore_emulator, firestore_project, rules_for("request.auth != null"))
    alice = end_user("alice")
    stream = open_stream(alice)
    stream.add(1, **query_target(alice, alice.collection("notes")))
    stream.until_global()

    load_rules(firestore_emulator, firestore_project, rules_for("false"))
    firestore_client.document("notes/n1").set({"text": "after the new rules"})

    assert_denied(stream.next(), 1)
    assert "after the new rules" not in texts(stream.quiet())


def test_the_server_client_listens_past_rules_that_deny_everything(firestore_emulator, firestore_project,
                                                                    firestore_client, open_stream):
    load_rules(firestore_emulator, firestore_project, rules_for("false"))
    firestore_client.document("notes/n1").set({"text": "visible to the server"})
    stream = open_stream(firestore_client)

    stream.add(1, **query_target(firestore_client, firestore_client.collection("notes")))

    assert texts(stream.until_global()) == ["visible to the server"]


def test_an_unauthenticated_listener_is_judged_with_no_auth(firestore_emulator, firestore_project, firestore_client,
                                                            end_user, open_stream):
    load_rules(firestore_emulator, firestore_project, rules_for("request.auth == null"))
    firestore_client.document("public/p").set({"text": "for anyone"})
    nobody, alice = end_user(None), end_user("alice")
    allowed, denied = open_stream(nobody), open_stream(alice)

    allowed.add(1, **docs_target(nobody, "public/p"))
    denied.add(1, **docs_target(alice, "public/p"))

    assert texts(allowed.until_global()) == ["for anyone"]
    assert_denied(denied.next(), 1)


def test_a_bearer_token_that_is_not_a_jwt_fails_the_stream_with_unauthenticated(
        firestore_emulator, firestore_project, open_stream):
    load_rules(firestore_emulator, firestore_project, rules_for("true"))
    client = end_user_client(firestore_emulator, firestore_project, "not-a-token")
    stream = open_stream(client)

    stream.add(1, **docs_target(client, "notes/n1"))

    assert stream.next() is None
    assert isinstance(stream.error, exceptions.Unauthenticated)


def test_on_snapshot_of_a_denied_document_delivers_nothing_and_stops(notes, end_user):
    alice = end_user("alice")
    seen = Snapshots()
    watch = alice.document("notes/b1").on_snapshot(seen)
    try:
        deadline = time.monotonic() + 20
        while watch.is_active and time.monotonic() < deadline:
            time.sleep(0.05)

        assert not watch.is_active
        assert seen.received == []
    finally:
        watch.unsubscribe()


def test_on_snapshot_of_an_owned_query_sees_its_documents_and_their_changes(notes, end_user):
    alice = end_user("alice")
    seen = Snapshots()
    watch = alice.collection("notes").where(filter=FieldFilter("owner", "==", "alice")).on_snapshot(seen)
    try:
        seen.wait_count(1)
        notes.document("a2").set({"owner": "alice", "text": "second"})

        got = seen.wait_for(lambda s: s and s[-1].ids == ["a1", "a2"])
        assert [(c.kind, c.id) for c in got[-1].changes] == [("ADDED", "a2")]
    finally:
        watch.unsubscribe()
