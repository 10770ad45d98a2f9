"""A richer rules file (tests/firestore_emulator/rules/rich.rules) through the official client: functions
and `let`, get()/exists()/getAfter() of other documents, request.resource validation, wildcards and recursive
wildcards, type checks, string/list/map/set methods, timestamps and durations, and queries the rules must be
able to prove from their filters."""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Callable

import pytest
from google.api_core import exceptions
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from fixtures.firestore_rules import end_user_client, id_token, load_rules

RICH_RULES = (pathlib.Path(__file__).parent / "rules" / "rich.rules").read_text()
SERVER_TIME = firestore.SERVER_TIMESTAMP
NOW = datetime.datetime.now(datetime.timezone.utc)


@pytest.fixture
def clients(firestore_emulator, firestore_project, firestore_client) -> dict[str, firestore.Client]:
    load_rules(firestore_emulator, firestore_project, RICH_RULES)
    server = firestore_client
    seed = {
        "users/alice": {"name": "Alice", "email": "alice@example.com", "createdAt": NOW},
        "users/bob": {"name": "Bob", "email": "bob@example.com", "createdAt": NOW},
        "users/alice/notes/n1": {"text": "mine"},
        "users/alice/notes/n1/drafts/x": {"text": "deeper"},
        "teams/t1": {"members": ["alice", "dave"]},
        "teams/t1/docs/d1": {"author": "alice", "title": "plan"},
        "posts/p1": {"published": True, "author": "bob"},
        "posts/p2": {"published": False, "author": "alice"},
        "posts/p1/comments/c1": {"flagged": False},
        "users/bob/comments/c2": {"flagged": True},
        "scores/s1": {"points": 50},
        "groups/g1": {"members": ["alice", "bob"]},
        "groups/g2": {"members": ["bob"]},
        "counters/main": {"n": 0, "lastItem": "none"},
    }
    for path, data in seed.items():
        server.document(path).set(data)
    made = {
        uid: end_user_client(firestore_emulator, firestore_project, id_token(uid, **claims))
        for uid, claims in {"alice": {}, "bob": {}, "carol": {}, "dave": {}, "root": {"admin": True},
                            "tess": {"tester": True}}.items()
    }
    made["nobody"] = end_user_client(firestore_emulator, firestore_project, None)
    made["server"] = server
    yield made
    for name, client in made.items():
        if name != "server":
            client.close()


def profile(**changes) -> dict:
    return {"name": "Carol", "email": "Carol@Example.com", "createdAt": SERVER_TIME, **changes}


def post(**changes) -> dict:
    return {"author": "bob", "score": 4, "title": "Hello Big World", "slug": "hello-big-world", **changes}


def event(start_in: datetime.timedelta, lasting: datetime.timedelta) -> dict:
    start = NOW + start_in
    return {"start": start, "end": start + lasting}


def settings(**changes) -> dict:
    return {"theme": "dark", "fontSize": 14, "langs": ["en", "fr"], **changes}


def counted_item(client: firestore.Client, item: str, bump: bool = True, create: bool = True):
    batch = client.batch()
    if bump:
        batch.update(client.document("counters/main"), {"n": firestore.Increment(1), "lastItem": item})
    if create:
        batch.create(client.document(f"items/{item}"), {"name": item})
    return batch.commit()


def query(client: firestore.Client, collection: str, *filters, limit: int | None = None, group: bool = False):
    q = client.collection_group(collection) if group else client.collection(collection)
    for f in filters:
        q = q.where(filter=f)
    if limit is not None:
        q = q.limit(limit)
    return list(q.stream())


Case = tuple[str, str, Callable[[firestore.Client], object]]

ALLOWED: list[Case] = [
    # request.resource validation, server timestamps equal request.time
    ("a user creates her profile in the validated shape", "carol", lambda c: c.document("users/carol").set(profile())),
    ("a profile may carry up to three tags", "carol",
     lambda c: c.document("users/carol").set(profile(tags=["a", "b", "c"]))),
    ("an owner renames herself (diff().affectedKeys())", "alice",
     lambda c: c.document("users/alice").update({"name": "Alicia"})),
    ("an admin claim deletes a profile", "root", lambda c: c.document("users/bob").delete()),
    # recursive wildcard
    ("an owner reads a note below her profile", "alice", lambda c: c.document("users/alice/notes/n1").get()),
    ("an owner writes two levels further down", "alice",
     lambda c: c.document("users/alice/notes/n1/drafts/y").set({"text": "new"})),
    ("an owner lists her notes", "alice", lambda c: list(c.collection("users/alice/notes").stream())),
    # get() and exists() of other documents, inside functions with let
    ("a team member gets the team", "alice", lambda c: c.document("teams/t1").get()),
    ("a team member lists the team's docs", "alice", lambda c: list(c.collection("teams/t1/docs").stream())),
    ("a team member with a profile adds a doc", "alice",
     lambda c: c.document("teams/t1/docs/d2").set({"author": "alice", "title": "new"})),
    ("the author updates her team doc", "alice", lambda c: c.document("teams/t1/docs/d1").update({"title": "v2"})),
    # queries proven by their filters
    ("anyone gets a published post", "nobody", lambda c: c.document("posts/p1").get()),
    ("an author gets her unpublished post", "alice", lambda c: c.document("posts/p2").get()),
    ("a query for published posts with a small limit", "nobody",
     lambda c: query(c, "posts", FieldFilter("published", "==", True), limit=10)),
    ("a collection group query for unflagged comments", "nobody",
     lambda c: query(c, "comments", FieldFilter("flagged", "==", False), group=True)),
    ("a range that implies the rule's range", "nobody",
     lambda c: query(c, "scores", FieldFilter("points", ">", 20))),
    ("an inclusive range that still implies it", "nobody",
     lambda c: query(c, "scores", FieldFilter("points", ">=", 11))),
    ("a member queries the groups whose members contain her", "alice",
     lambda c: query(c, "groups", FieldFilter("members", "array_contains", "alice"))),
    # string methods, int checks, modulo
    ("a post whose slug is its lowercased, hyphenated title", "bob", lambda c: c.document("posts/p3").set(post())),
    # getAfter / existsAfter across a batch
    ("a counter moves with the item it counts, in one batch", "alice", lambda c: counted_item(c, "i1")),
    # timestamps and durations
    ("an event tomorrow lasting an hour", "alice",
     lambda c: c.document("events/e1").set(event(datetime.timedelta(days=1), datetime.timedelta(hours=1)))),
    # map.get() defaults, math, sets, `in` a list, ternaries over claims
    ("settings with valid values", "alice", lambda c: c.document("settings/alice").set(settings())),
    ("settings relying on defaults", "alice", lambda c: c.document("settings/alice").set({"theme": "light"})),
    ("beta settings for a tester", "tess", lambda c: c.document("settings/tess").set(settings(beta=True))),
]

DENIED: list[Case] = [
    ("a profile with an unexpected key", "carol", lambda c: c.document("users/carol").set(profile(role="admin"))),
    ("a profile without its email", "carol",
     lambda c: c.document("users/carol").set({"name": "C", "createdAt": SERVER_TIME})),
    ("a profile with an email outside example.com", "carol",
     lambda c: c.document("users/carol").set(profile(email="carol@elsewhere.org"))),
    ("a profile with a 41-character name", "carol", lambda c: c.document("users/carol").set(profile(name="x" * 41))),
    ("a profile whose name is not a string", "carol", lambda c: c.document("users/carol").set(profile(name=7))),
    ("a profile with a client-chosen createdAt", "carol",
     lambda c: c.document("users/carol").set(profile(createdAt=NOW))),
    ("a profile with four tags", "carol",
     lambda c: c.document("users/carol").set(profile(tags=["a", "b", "c", "d"]))),
    ("a profile created for someone else", "carol", lambda c: c.document("users/zed").set(profile())),
    ("an owner changes her email (outside the allowed keys)", "alice",
     lambda c: c.document("users/alice").update({"email": "new@example.com"})),
    ("a non-admin deletes a profile", "alice", lambda c: c.document("users/bob").delete()),
    ("another user reads a note below a profile", "bob", lambda c: c.document("users/alice/notes/n1").get()),
    ("another user reads deeper below a profile", "bob",
     lambda c: c.document("users/alice/notes/n1/drafts/x").get()),
    ("a non-member gets the team", "bob", lambda c: c.document("teams/t1").get()),
    ("a non-member lists the team's docs", "bob", lambda c: list(c.collection("teams/t1/docs").stream())),
    ("a member without a profile adds a doc (exists() is false)", "dave",
     lambda c: c.document("teams/t1/docs/d3").set({"author": "dave"})),
    ("a member adds a doc in someone else's name", "alice",
     lambda c: c.document("teams/t1/docs/d4").set({"author": "dave"})),
    ("a team that does not exist (get() of a missing document)", "alice",
     lambda c: c.document("teams/t9").get()),
    ("anyone gets an unpublished post", "nobody", lambda c: c.document("posts/p2").get()),
    ("a query for posts that does not filter on published", "nobody", lambda c: query(c, "posts", limit=10)),
    ("a query for published posts without a limit", "nobody",
     lambda c: query(c, "posts", FieldFilter("published", "==", True))),
    ("a query for published posts with too large a limit", "nobody",
     lambda c: query(c, "posts", FieldFilter("published", "==", True), limit=50)),
    ("a collection group query without the flag filter", "nobody", lambda c: query(c, "comments", group=True)),
    ("a collection group query for flagged comments", "nobody",
     lambda c: query(c, "comments", FieldFilter("flagged", "==", True), group=True)),
    ("a range that does not imply the rule's range", "nobody",
     lambda c: query(c, "scores", FieldFilter("points", ">", 5))),
    ("an inclusive bound at the rule's exclusive bound", "nobody",
     lambda c: query(c, "scores", FieldFilter("points", ">=", 10))),
    ("a member queries groups by someone else's membership", "alice",
     lambda c: query(c, "groups", FieldFilter("members", "array_contains", "bob"))),
    ("a post with an odd score", "bob", lambda c: c.document("posts/p3").set(post(score=3))),
    ("a post whose score is a double", "bob", lambda c: c.document("posts/p3").set(post(score=4.0))),
    ("a post with a six-word title", "bob",
     lambda c: c.document("posts/p3").set(post(title="a b c d e f", slug="a-b-c-d-e-f"))),
    ("a post whose slug does not follow its title", "bob",
     lambda c: c.document("posts/p3").set(post(slug="hello"))),
    ("a counter bumped without its item", "alice", lambda c: counted_item(c, "i2", create=False)),
    ("an item created without bumping the counter", "alice", lambda c: counted_item(c, "i3", bump=False)),
    ("an event in the past", "alice",
     lambda c: c.document("events/e2").set(event(-datetime.timedelta(days=1), datetime.timedelta(hours=1)))),
    ("an event forty days away", "alice",
     lambda c: c.document("events/e3").set(event(datetime.timedelta(days=40), datetime.timedelta(hours=1)))),
    ("an event lasting three hours", "alice",
     lambda c: c.document("events/e4").set(event(datetime.timedelta(days=1), datetime.timedelta(hours=3)))),
    ("settings with an unknown theme", "alice", lambda c: c.document("settings/alice").set(settings(theme="blue"))),
    ("settings with too large a font", "alice", lambda c: c.document("settings/alice").set(settings(fontSize=20))),
    ("settings with a font size as a string", "alice",
     lambda c: c.document("settings/alice").set(settings(fontSize="14"))),
    ("settings with a repeated language", "alice",
     lambda c: c.document("settings/alice").set(settings(langs=["en", "en"]))),
    ("beta settings without the tester claim", "alice",
     lambda c: c.document("settings/alice").set(settings(beta=True))),
    ("settings written for someone else", "alice", lambda c: c.document("settings/bob").set(settings())),
]


@pytest.mark.parametrize(("who", "action"), [c[1:] for c in ALLOWED], ids=[c[0] for c in ALLOWED])
def test_rich_rules_allow(clients, who, action):
    action(clients[who])


@pytest.mark.parametrize(("who", "action"), [c[1:] for c in DENIED], ids=[c[0] for c in DENIED])
def test_rich_rules_deny(clients, who, action):
    with pytest.raises(exceptions.PermissionDenied):
        action(clients[who])


def test_a_server_timestamp_in_an_allowed_create_is_stored(clients):
    clients["carol"].document("users/carol").set(profile())

    stored = clients["server"].document("users/carol").get().to_dict()
    assert abs(stored["createdAt"] - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=1)


def test_a_batch_with_one_denied_write_writes_nothing(clients):
    batch = clients["alice"].batch()
    batch.set(clients["alice"].document("settings/alice"), settings())
    batch.set(clients["alice"].document("settings/bob"), settings())

    with pytest.raises(exceptions.PermissionDenied):
        batch.commit()

    assert not clients["server"].document("settings/alice").get().exists


def test_getafter_sees_the_counter_the_batch_writes(clients):
    counted_item(clients["alice"], "i1")

    assert clients["server"].document("counters/main").get().to_dict() == {"n": 1, "lastItem": "i1"}
    assert clients["server"].document("items/i1").get().exists
