"""The repository's firestore.rules, as it is, evaluated by the emulator for end-user clients.

Owners read their own jobs, results and dead letters (a get, or a query whose filter proves `owner == uid`);
operators (the custom claim `oncetask_operator: true`, nothing else) read them all; other users and
unauthenticated clients read nothing; no client writes anything, of any kind; server clients bypass the rules.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import pytest
from google.api_core import exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import And, FieldFilter, Or

from fixtures.firestore_rules import end_user_client, id_token, load_rules

REPO_RULES = (pathlib.Path(__file__).parents[2] / "firestore.rules").read_text()


@pytest.fixture
def clients(firestore_emulator, firestore_project, firestore_client) -> dict[str, firestore.Client]:
    """The repository's rules loaded for this project, two jobs (alice's and bob's) seeded by the server
    client, and the clients of the table: alice, bob, nobody, and the server."""
    load_rules(firestore_emulator, firestore_project, REPO_RULES)
    firestore_client.document("jobs/alice-1").set({"owner": "alice", "state": "done"})
    firestore_client.document("jobs/bob-1").set({"owner": "bob", "state": "queued"})
    firestore_client.document("jobs/orphan").set({"state": "queued"})  # no owner field at all
    firestore_client.document("other/x").set({"owner": "alice"})
    firestore_client.document("results/alice-1").set({"owner": "alice", "outputs": {}})
    firestore_client.document("failed_tasks/bob-1").set({"owner": "bob", "errors": []})
    firestore_client.document("jobs/alice-1/children/c-1").set({"owner": "alice", "state": "completed"})
    firestore_client.document("jobs/anon-1").set({"owner": "capability:" + "0" * 64, "state": "queued"})
    made = {
        "alice": end_user_client(firestore_emulator, firestore_project, id_token("alice", firestore_project)),
        "bob": end_user_client(firestore_emulator, firestore_project, id_token("bob", firestore_project)),
        # An operator: the custom claim the API reads too (callers.OPERATOR_CLAIM).
        "olga": end_user_client(firestore_emulator, firestore_project,
                                id_token("olga", firestore_project, oncetask_operator=True)),
        # Claims that look like the operator's but are not `true`.
        "mallory": end_user_client(firestore_emulator, firestore_project,
                                   id_token("mallory", firestore_project, oncetask_operator="true")),
        "nobody": end_user_client(firestore_emulator, firestore_project, None),
        "server": firestore_client,
    }
    yield made
    for name in ("alice", "bob", "olga", "mallory", "nobody"):
        made[name].close()


def _owned_by(uid: str):
    return FieldFilter("owner", "==", uid)


def _in_transaction(client: firestore.Client, path: str):
    @firestore.transactional
    def read(transaction):
        return client.document(path).get(transaction=transaction).to_dict()

    return read(client.transaction())


def _batch_update(client: firestore.Client, path: str, fields: dict):
    batch = client.batch()
    batch.update(client.document(path), fields)
    return batch.commit()


def _write_in_transaction(client: firestore.Client, path: str):
    @firestore.transactional
    def write(transaction):
        snapshot = client.document(path).get(transaction=transaction)
        transaction.update(client.document(path), {"state": "hacked", "seen": snapshot.exists})

    return write(client.transaction())


# Every kind of write a client can send, each on an existing document `path` (a create on a new one beside it).
WRITES: list[tuple[str, Callable[[firestore.Client, str], object]]] = [
    ("creates", lambda c, path: c.document(path + "-new").create({"owner": "alice"})),
    ("overwrites", lambda c, path: c.document(path).set({"owner": "alice", "state": "hacked"})),
    ("merges into", lambda c, path: c.document(path).set({"state": "hacked"}, merge=True)),
    ("updates", lambda c, path: c.document(path).update({"state": "hacked"})),
    ("deletes", lambda c, path: c.document(path).delete()),
    ("updates in a batch", lambda c, path: _batch_update(c, path, {"state": "hacked"})),
    ("updates in a transaction", _write_in_transaction),
]
WRITTEN = ["jobs/alice-1", "results/alice-1", "failed_tasks/bob-1", "jobs/alice-1/children/c-1"]


Case = tuple[str, str, Callable[[firestore.Client], object]]

ALLOWED: list[Case] = [
    ("alice gets her own job", "alice", lambda c: c.document("jobs/alice-1").get()),
    ("alice queries the jobs she owns", "alice",
     lambda c: list(c.collection("jobs").where(filter=_owned_by("alice")).stream())),
    ("alice queries her jobs with `in` on her uid only", "alice",
     lambda c: list(c.collection("jobs").where(filter=FieldFilter("owner", "in", ["alice"])).stream())),
    ("alice queries her jobs with more filters and an order", "alice",
     lambda c: list(c.collection("jobs").where(filter=_owned_by("alice"))
                    .where(filter=FieldFilter("state", "==", "done")).order_by("state").limit(5).stream())),
    ("alice queries with an OR whose every branch fixes her uid", "alice",
     lambda c: list(c.collection("jobs").where(filter=Or([
         And([_owned_by("alice"), FieldFilter("state", "==", "done")]), _owned_by("alice")])).stream())),
    ("alice counts the jobs she owns", "alice",
     lambda c: c.collection("jobs").where(filter=_owned_by("alice")).count().get()),
    ("alice reads her job in a transaction", "alice", lambda c: _in_transaction(c, "jobs/alice-1")),
    ("bob gets his own job", "bob", lambda c: c.document("jobs/bob-1").get()),
    ("the server client writes a job", "server", lambda c: c.document("jobs/new").set({"owner": "carol"})),
    ("the server client reads anyone's job", "server", lambda c: c.document("jobs/bob-1").get()),
    ("the server client lists every job", "server", lambda c: list(c.collection("jobs").stream())),
    ("the server client lists collections", "server", lambda c: list(c.collections())),
    ("alice gets her job's result", "alice", lambda c: c.document("results/alice-1").get()),
    ("alice queries her results", "alice",
     lambda c: list(c.collection("results").where(filter=_owned_by("alice")).stream())),
    ("bob gets his job's dead letter", "bob", lambda c: c.document("failed_tasks/bob-1").get()),
    ("an operator gets another user's job", "olga", lambda c: c.document("jobs/bob-1").get()),
    ("an operator gets an anonymous submission's job", "olga", lambda c: c.document("jobs/anon-1").get()),
    ("an operator lists every job", "olga", lambda c: list(c.collection("jobs").stream())),
    ("an operator queries jobs by state only", "olga",
     lambda c: list(c.collection("jobs").where(filter=FieldFilter("state", "==", "queued")).stream())),
    ("an operator counts every job", "olga", lambda c: c.collection("jobs").count().get()),
    ("an operator batch-gets two users' jobs", "olga",
     lambda c: list(c.get_all([c.document("jobs/alice-1"), c.document("jobs/bob-1")]))),
    ("an operator gets another user's result", "olga", lambda c: c.document("results/alice-1").get()),
    ("an operator lists the dead letters", "olga", lambda c: list(c.collection("failed_tasks").stream())),
]

DENIED: list[Case] = [
    ("alice gets bob's job", "alice", lambda c: c.document("jobs/bob-1").get()),
    ("alice gets a job without an owner", "alice", lambda c: c.document("jobs/orphan").get()),
    ("alice gets a job that does not exist", "alice", lambda c: c.document("jobs/missing").get()),
    ("alice lists all jobs", "alice", lambda c: list(c.collection("jobs").stream())),
    ("alice queries bob's jobs", "alice", lambda c: list(c.collection("jobs").where(filter=_owned_by("bob")).stream())),
    ("alice queries jobs of alice or bob", "alice",
     lambda c: list(c.collection("jobs").where(filter=FieldFilter("owner", "in", ["alice", "bob"])).stream())),
    ("alice queries jobs not owned by bob", "alice",
     lambda c: list(c.collection("jobs").where(filter=FieldFilter("owner", "!=", "bob")).stream())),
    ("alice queries with an OR one of whose branches does not fix the owner", "alice",
     lambda c: list(c.collection("jobs").where(filter=Or([_owned_by("alice"), FieldFilter("state", "==", "done")]))
                    .stream())),
    ("alice queries by state only", "alice",
     lambda c: list(c.collection("jobs").where(filter=FieldFilter("state", "==", "done")).stream())),
    ("alice counts all jobs", "alice", lambda c: c.collection("jobs").count().get()),
    ("alice batch-gets her job and bob's", "alice",
     lambda c: list(c.get_all([c.document("jobs/alice-1"), c.document("jobs/bob-1")]))),
    ("alice reads bob's job in a transaction", "alice", lambda c: _in_transaction(c, "jobs/bob-1")),
    ("alice queries the jobs collection group", "alice",
     lambda c: list(c.collection_group("jobs").where(filter=_owned_by("alice")).stream())),
    ("alice creates a job she would own", "alice", lambda c: c.document("jobs/mine").create({"owner": "alice"})),
    ("alice updates her own job", "alice", lambda c: c.document("jobs/alice-1").update({"state": "queued"})),
    ("alice overwrites her own job", "alice", lambda c: c.document("jobs/alice-1").set({"owner": "alice"})),
    ("alice deletes her own job", "alice", lambda c: c.document("jobs/alice-1").delete()),
    ("alice writes her job in a batch", "alice", lambda c: _batch_update(c, "jobs/alice-1", {"state": "x"})),
    ("alice reads a document outside jobs", "alice", lambda c: c.document("other/x").get()),
    ("alice writes a document outside jobs", "alice", lambda c: c.document("other/y").set({"a": 1})),
    ("alice lists the documents of jobs", "alice", lambda c: list(c.collection("jobs").list_documents())),
    ("alice lists collections", "alice", lambda c: list(c.collections())),
    ("bob gets alice's job", "bob", lambda c: c.document("jobs/alice-1").get()),
    ("an unauthenticated client gets alice's job", "nobody", lambda c: c.document("jobs/alice-1").get()),
    ("an unauthenticated client queries alice's jobs", "nobody",
     lambda c: list(c.collection("jobs").where(filter=_owned_by("alice")).stream())),
    ("an unauthenticated client writes a job", "nobody", lambda c: c.document("jobs/x").set({"owner": "x"})),
    ("an unauthenticated client lists every job", "nobody", lambda c: list(c.collection("jobs").stream())),
    ("an unauthenticated client gets a result", "nobody", lambda c: c.document("results/alice-1").get()),
    ("bob gets alice's result", "bob", lambda c: c.document("results/alice-1").get()),
    ("alice gets bob's dead letter", "alice", lambda c: c.document("failed_tasks/bob-1").get()),
    ("alice lists every result", "alice", lambda c: list(c.collection("results").stream())),
    ("alice gets a child outcome of her own job", "alice", lambda c: c.document("jobs/alice-1/children/c-1").get()),
    ("alice gets an anonymous submission's job", "alice", lambda c: c.document("jobs/anon-1").get()),
    ("a user whose operator claim is the string 'true' gets bob's job", "mallory",
     lambda c: c.document("jobs/bob-1").get()),
    ("a user whose operator claim is the string 'true' lists every job", "mallory",
     lambda c: list(c.collection("jobs").stream())),
    ("an operator gets a child outcome", "olga", lambda c: c.document("jobs/alice-1/children/c-1").get()),
    ("an operator reads a document outside oncetask's", "olga", lambda c: c.document("other/x").get()),
]
# No client writes anything: the owner, another user, an operator, nobody; every kind of write, everywhere.
DENIED += [(f"{who} {verb} {path}", who, lambda c, w=write, p=path: w(c, p))
           for who in ("alice", "bob", "olga", "nobody") for verb, write in WRITES for path in WRITTEN]


@pytest.mark.parametrize(("who", "action"), [c[1:] for c in ALLOWED], ids=[c[0] for c in ALLOWED])
def test_repository_rules_allow(clients, who, action):
    action(clients[who])


@pytest.mark.parametrize(("who", "action"), [c[1:] for c in DENIED], ids=[c[0] for c in DENIED])
def test_repository_rules_deny(clients, who, action):
    with pytest.raises(exceptions.PermissionDenied):
        action(clients[who])


def test_a_denied_write_leaves_the_document_unchanged(clients):
    with pytest.raises(exceptions.PermissionDenied):
        clients["alice"].document("jobs/alice-1").set({"owner": "alice", "state": "hacked"})

    assert clients["server"].document("jobs/alice-1").get().to_dict() == {"owner": "alice", "state": "done"}


def test_an_owners_query_returns_only_her_jobs(clients):
    found = clients["alice"].collection("jobs").where(filter=_owned_by("alice")).stream()

    assert [doc.id for doc in found] == ["alice-1"]


def test_a_denial_answers_productions_message(clients):
    with pytest.raises(exceptions.PermissionDenied) as denied:
        clients["bob"].document("jobs/alice-1").get()

    assert denied.value.message == "Missing or insufficient permissions."
