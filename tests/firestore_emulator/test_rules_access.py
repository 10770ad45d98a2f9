"""Which requests rules apply to, and how rules get into the emulator (--rules, the securityRules endpoint)."""

from __future__ import annotations

import pathlib
import urllib.request

import pytest
from google.api_core import exceptions
from google.cloud import firestore

from fixtures.firestore import firestore_client_for
from fixtures.firestore_rules import end_user_client, id_token, load_rules, put_rules
from oncetask_emulators.process import LaunchError

REPO_RULES_PATH = pathlib.Path(__file__).parents[2] / "firestore.rules"
DENY_ALL = "rules_version = '2';\nservice cloud.firestore {\n  match /{document=**} {\n    allow read, write: if false;\n  }\n}\n"
ALLOW_ALL = DENY_ALL.replace("if false", "if true")


def rules_for(condition: str) -> str:
    return ("rules_version = '2';\nservice cloud.firestore {\n  match /databases/{database}/documents {\n"
            f"    match /{{document=**}} {{\n      allow read, write: if {condition};\n    }}\n  }}\n}}\n")


@pytest.fixture
def alice(firestore_emulator, firestore_project):
    client = end_user_client(firestore_emulator, firestore_project, id_token("alice", email="alice@example.com"))
    yield client
    client.close()


@pytest.fixture
def nobody(firestore_emulator, firestore_project):
    client = end_user_client(firestore_emulator, firestore_project, None)
    yield client
    client.close()


def test_without_rules_an_end_user_reads_and_writes_as_before(alice):
    alice.document("jobs/j1").set({"owner": "bob"})

    assert alice.document("jobs/j1").get().to_dict() == {"owner": "bob"}
    assert [d.id for d in alice.collection("jobs").stream()] == ["j1"]


def test_the_server_client_bypasses_rules(firestore_emulator, firestore_project, firestore_client):
    load_rules(firestore_emulator, firestore_project, DENY_ALL)

    firestore_client.document("jobs/j1").set({"n": 1})

    assert firestore_client.document("jobs/j1").get().to_dict() == {"n": 1}


def test_a_request_without_authorization_is_an_unauthenticated_client(firestore_emulator, firestore_project, nobody,
                                                                      alice):
    load_rules(firestore_emulator, firestore_project, rules_for("request.auth == null"))

    nobody.document("public/p").set({"n": 1})

    with pytest.raises(exceptions.PermissionDenied):
        alice.document("public/p").get()


def test_the_id_tokens_subject_and_claims_are_request_auth(firestore_emulator, firestore_project, alice):
    load_rules(firestore_emulator, firestore_project, rules_for(
        "request.auth.uid == 'alice' && request.auth.token.email == 'alice@example.com'"
        " && request.auth.token.firebase.sign_in_provider == 'custom' && request.auth.token.user_id == 'alice'"))

    alice.document("notes/n").set({"n": 1})


def test_a_bearer_token_that_is_not_a_jwt_answers_unauthenticated(firestore_emulator, firestore_project):
    load_rules(firestore_emulator, firestore_project, ALLOW_ALL)
    client = end_user_client(firestore_emulator, firestore_project, "not-a-token")

    with pytest.raises(exceptions.Unauthenticated):
        client.document("a/b").get()


def test_rules_replaced_at_run_time_decide_the_next_request(firestore_emulator, firestore_project, alice):
    load_rules(firestore_emulator, firestore_project, rules_for("true"))
    alice.document("a/b").set({"n": 1})

    load_rules(firestore_emulator, firestore_project, rules_for("false"))

    with pytest.raises(exceptions.PermissionDenied):
        alice.document("a/b").get()


def test_rules_that_do_not_load_answer_400_with_the_line_and_column_and_keep_the_old_rules(
        firestore_emulator, firestore_project, alice):
    load_rules(firestore_emulator, firestore_project, rules_for("true"))

    status, body = put_rules(firestore_emulator, firestore_project, rules_for("request.auth.uid == owner"))

    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    (issue,) = body["issues"]
    assert issue["severity"] == "ERROR"
    assert issue["sourcePosition"]["line"] == 5
    assert issue["sourcePosition"]["column"] == 49
    assert "unknown variable 'owner'" in issue["description"]
    alice.document("a/b").set({"still": "allowed"})


def test_ignore_errors_reports_the_issues_with_200(firestore_emulator, firestore_project):
    status, body = put_rules(firestore_emulator, firestore_project, "service cloud.firestore {", ignore_errors=True)

    assert status == 200
    assert body["issues"][0]["sourcePosition"]["line"] == 1


def test_rules_apply_to_their_project_only(firestore_emulator, firestore_project, alice):
    load_rules(firestore_emulator, firestore_project, DENY_ALL)
    other = end_user_client(firestore_emulator, firestore_project + "-other", id_token("alice"))

    other.document("a/b").set({"n": 1})

    with pytest.raises(exceptions.PermissionDenied):
        alice.document("a/b").get()


def test_deleting_a_projects_rules_restores_the_default(firestore_emulator, firestore_project, alice):
    load_rules(firestore_emulator, firestore_project, DENY_ALL)
    url = f"http://{firestore_emulator.http}/emulator/v1/projects/{firestore_project}:securityRules"
    urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=5).read()

    alice.document("a/b").set({"n": 1})


def test_the_rules_flag_applies_to_every_project(start_firestore_emulator):
    emulator = start_firestore_emulator("--rules", str(REPO_RULES_PATH))
    server = firestore_client_for(emulator, "flagged")
    server.document("jobs/j1").set({"owner": "alice"})
    server.document("jobs/j2").set({"owner": "bob"})
    alice = end_user_client(emulator, "flagged", id_token("alice"))

    assert alice.document("jobs/j1").get().exists
    with pytest.raises(exceptions.PermissionDenied):
        alice.document("jobs/j2").get()
    with pytest.raises(exceptions.PermissionDenied):
        end_user_client(emulator, "another-project", id_token("alice")).document("jobs/j1").get()


def test_a_rules_file_that_does_not_load_stops_the_emulator_at_start(start_firestore_emulator, tmp_path):
    broken = tmp_path / "broken.rules"
    broken.write_text("service cloud.firestore {\n  match /a/{b} {\n    allow read: if b ==;\n  }\n}\n")

    with pytest.raises(LaunchError) as failed:
        start_firestore_emulator("--rules", str(broken))

    assert f"{broken}:3:24: expected an expression, found ';'" in str(failed.value)


def test_a_denied_transaction_fails_without_retrying_and_writes_nothing(firestore_emulator, firestore_project,
                                                                          firestore_client, alice):
    load_rules(firestore_emulator, firestore_project, rules_for("request.method != 'update'"))
    firestore_client.document("c/d").set({"n": 1})
    attempts = []

    @firestore.transactional
    def bump(transaction):
        attempts.append(1)
        snapshot = alice.document("c/d").get(transaction=transaction)
        transaction.update(alice.document("c/d"), {"n": snapshot.get("n") + 1})

    with pytest.raises(exceptions.PermissionDenied):
        bump(alice.transaction())

    assert len(attempts) == 1
    assert firestore_client.document("c/d").get().to_dict() == {"n": 1}


def test_the_bulk_writer_gets_permission_denied_per_write(firestore_emulator, firestore_project, firestore_client,
                                                          alice):
    load_rules(firestore_emulator, firestore_project, rules_for("request.resource.data.ok == true"))
    failures = []
    writer = alice.bulk_writer()
    writer.on_write_error(lambda error, bulk_writer: failures.append(error.code) and False)
    writer.set(alice.document("c/good"), {"ok": True})
    writer.set(alice.document("c/bad"), {"ok": False})
    writer.close()

    assert failures == [7]  # PERMISSION_DENIED
    assert firestore_client.document("c/good").get().exists
    assert not firestore_client.document("c/bad").get().exists


def test_the_emulator_logs_why_it_denied(firestore_emulator, firestore_project, alice):
    if firestore_emulator.process is None:
        pytest.skip("the reason is in our emulator's output; this session uses another emulator")
    load_rules(firestore_emulator, firestore_project, rules_for("request.auth.uid == 'bob'"))

    with pytest.raises(exceptions.PermissionDenied):
        alice.document("a/b").get()

    assert "denied get of" in firestore_emulator.process.tail()
    assert "to uid 'alice': false for 'get' @ L5" in firestore_emulator.process.tail()
