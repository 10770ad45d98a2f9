"""Listen targets over documents in memory (pure, no server): a commit checked document by document decides
membership exactly as RunQuery's query core does, for every kind of filter, order and projection."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1._helpers import encode_dict
from google.cloud.firestore_v1.base_query import FieldFilter, Or
from google.cloud.firestore_v1.types import document

from oncetask_emulators.firestore import query
from oncetask_emulators.firestore.listen.targets import WatchTarget

DocumentPb = document.Document.pb()
CLIENT = firestore.Client(project="p", credentials=AnonymousCredentials())
ROOT = "projects/p/databases/(default)/documents"

DATA = {
    "items/a": {"n": 1, "s": "x", "tags": ["red", "blue"], "m": {"k": 1}},
    "items/b": {"n": 2.5, "s": "y", "tags": ["green"]},
    "items/c": {"n": None, "s": "x"},
    "items/d": {"n": float("nan")},
    "items/e": {"n": 3, "s": "z", "tags": []},
    "items/f": {"s": "w"},
    "other/a": {"n": 1},
    "items/a/sub/x": {"n": 1},
    "other/b/items/h": {"n": 5, "s": "x"},
}


def fields(data: dict) -> dict:
    return {k: document.Value.pb(v) for k, v in encode_dict(data).items()}


DOCS = [DocumentPb(name=f"{ROOT}/{path}", fields=fields(data)) for path, data in DATA.items()]
ITEMS = CLIENT.collection("items")

QUERIES = {
    "collection": ITEMS._query(),
    "equality": ITEMS.where(filter=FieldFilter("s", "==", "x")),
    "range": ITEMS.where(filter=FieldFilter("n", ">", 1)),
    "not-equal": ITEMS.where(filter=FieldFilter("n", "!=", 1)),
    "in": ITEMS.where(filter=FieldFilter("s", "in", ["x", "z"])),
    "not-in": ITEMS.where(filter=FieldFilter("s", "not-in", ["x"])),
    "array-contains": ITEMS.where(filter=FieldFilter("tags", "array_contains", "red")),
    "or": ITEMS.where(filter=Or([FieldFilter("n", "==", 3), FieldFilter("s", "==", "y")])),
    "is-null": ITEMS.where(filter=FieldFilter("n", "==", None)),
    "is-nan": ITEMS.where(filter=FieldFilter("n", "==", float("nan"))),
    "order-by-a-field-some-lack": ITEMS.order_by("tags"),
    "nested-field": ITEMS.where(filter=FieldFilter("m.k", "==", 1)),
    "projection": ITEMS.select(["s"]).where(filter=FieldFilter("s", ">=", "x")),
    "collection-group": CLIENT.collection_group("items").where(filter=FieldFilter("s", "==", "x")),
}


@pytest.mark.parametrize("label", QUERIES)
def test_a_commit_puts_in_a_target_what_run_query_returns(label):
    structured = QUERIES[label]._to_protobuf()._pb
    target = WatchTarget(1, parent=ROOT, structured=structured)
    expected = {doc.name: doc for doc in query.run_query(structured, ROOT, DOCS)}

    moves = target.apply(None, 1, {doc.name: doc for doc in DOCS})  # type: ignore[arg-type]  (no window)

    assert {m.name: m.doc for m in moves} == expected
    assert set(target.view) == set(expected)


def test_a_document_that_stops_matching_leaves_and_one_that_changes_nothing_stays_quiet():
    structured = QUERIES["equality"]._to_protobuf()._pb
    target = WatchTarget(1, parent=ROOT, structured=structured)
    target.apply(None, 1, {doc.name: doc for doc in DOCS})  # type: ignore[arg-type]
    a = next(doc for doc in DOCS if doc.name.endswith("items/a"))
    changed = DocumentPb(name=a.name, fields=fields({"s": "q"}))
    changed.update_time.seconds = 5

    assert target.apply(None, 2, {a.name: a}) == []  # type: ignore[arg-type]
    (left,) = target.apply(None, 3, {a.name: changed})  # type: ignore[arg-type]
    assert (left.name, left.doc) == (a.name, None)
    assert a.name not in target.view


# -- a client's view, rebuilt from the moves, is the query's result after every commit -----------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from google.cloud.firestore_v1.types import write  # noqa: E402

from oncetask_emulators.firestore.store import Store  # noqa: E402

WritePb = write.Write.pb()
WINDOWS = {
    "filtered": ITEMS.where(filter=FieldFilter("n", ">=", 2)),
    "top three": ITEMS.order_by("n").limit(3),
    "filtered window with offset": ITEMS.where(filter=FieldFilter("s", "==", "x")).order_by("n").offset(1).limit(2),
    "group": CLIENT.collection_group("items").where(filter=FieldFilter("s", "==", "x")),
}
paths_ = st.sampled_from(["items/a", "items/b", "items/c", "items/d", "other/b/items/e", "other/f"])
values_ = st.fixed_dictionaries({}, optional={"n": st.integers(0, 4), "s": st.sampled_from(["x", "y"])})
writes_ = st.lists(st.tuples(paths_, st.none() | values_), min_size=1, max_size=3)


@settings(max_examples=100, deadline=None)
@given(label=st.sampled_from(sorted(WINDOWS)), commits=st.lists(writes_, max_size=12))
def test_the_view_rebuilt_from_the_moves_is_the_query_result_after_every_commit(label, commits):
    db = Store().database("projects/p/databases/(default)")
    structured = WINDOWS[label]._to_protobuf()._pb
    target = WatchTarget(1, parent=ROOT, structured=structured)
    client_view: dict[str, int] = {}
    for commit in commits:
        changes = [WritePb(delete=f"{ROOT}/{p}") if data is None else
                   WritePb(update=DocumentPb(name=f"{ROOT}/{p}", fields=fields(data))) for p, data in commit]
        micros, _ = db.commit(changes)
        written = {w.delete or w.update.name: db.get(w.delete or w.update.name, micros) for w in changes}

        for move in target.apply(db, micros, written):
            if move.doc is None:
                assert move.name in client_view, "a document left that the client never had"
                del client_view[move.name]
            else:
                assert client_view.get(move.name) != move.doc.update_time.ToMicroseconds(), "sent twice"
                client_view[move.name] = move.doc.update_time.ToMicroseconds()

        expected = query.run_query(structured, ROOT, db.documents_under(ROOT, micros))
        assert client_view == {d.name: d.update_time.ToMicroseconds() for d in expected}
