"""Listen through the official client's `on_snapshot`: initial snapshots, changes in commit order, documents
entering and leaving queries, atomic commits, resume after dropped streams, many listeners under load.

The wire protocol itself (message order, resume tokens, target IDs, errors) is tested in
test_listen_protocol.py."""

from __future__ import annotations

import threading
import time

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1 import FieldFilter

from fixtures.firestore import firestore_client_for
from listening import Snapshots, drop_listens, listen_stats


@pytest.fixture
def ours(firestore_emulator):
    """The session emulator, when it is ours (the HTTP side drops streams and counts them)."""
    if firestore_emulator.http is None:
        pytest.skip("dropping and counting Listen streams needs our emulator's HTTP side")
    return firestore_emulator


@pytest.fixture
def watches():
    """Watches to unsubscribe at the end of the test, whatever happens."""
    started = []
    yield started
    for watch in started:
        watch.unsubscribe()


def test_a_document_listener_sees_the_document_each_change_and_its_delete(firestore_client, watches):
    ref = firestore_client.collection("jobs").document("j1")
    ref.set({"state": "queued"})
    seen = Snapshots()
    watches.append(ref.on_snapshot(seen))
    seen.wait_count(1)

    ref.update({"state": "running"})
    seen.wait_count(2)
    ref.delete()
    got = seen.wait_count(3)

    assert [(c.kind, c.data) for s in got for c in s.changes] == [
        ("ADDED", {"state": "queued"}), ("MODIFIED", {"state": "running"}), ("REMOVED", None)]
    assert got[-1].ids == []


def test_a_listener_on_a_missing_document_gets_an_empty_snapshot_then_the_created_document(firestore_client, watches):
    ref = firestore_client.collection("jobs").document("later")
    seen = Snapshots()
    watches.append(ref.on_snapshot(seen))

    first = seen.wait_count(1)[0]
    ref.set({"n": 1})
    second = seen.wait_count(2)[1]

    assert (first.ids, first.changes) == ([], [])
    assert [(c.kind, c.id, c.data) for c in second.changes] == [("ADDED", "later", {"n": 1})]


def test_a_collection_listener_starts_with_exactly_the_collections_documents(firestore_client, watches):
    jobs = firestore_client.collection("jobs")
    for i in range(3):
        jobs.document(f"j{i}").set({"i": i})
    jobs.document("j0").collection("logs").document("l0").set({})  # a subcollection: not in the collection
    firestore_client.collection("other").document("o").set({})
    seen = Snapshots()
    watches.append(jobs.on_snapshot(seen))

    first = seen.wait_count(1)[0]

    assert first.ids == ["j0", "j1", "j2"]
    assert sorted(c.kind for c in first.changes) == ["ADDED"] * 3


def test_a_query_with_order_and_limit_starts_with_its_window_in_order(firestore_client, watches):
    scores = firestore_client.collection("scores")
    for name, points in [("ann", 5), ("bob", 9), ("cid", 1), ("dan", 7)]:
        scores.document(name).set({"points": points})
    seen = Snapshots()
    # Ascending: the client sorts each snapshot itself, and its comparator mistakes DESCENDING (2) for ascending.
    lowest = scores.order_by("points").limit(2)
    watches.append(lowest.on_snapshot(seen))

    first = seen.wait_count(1)[0]

    assert first.ids == ["cid", "ann"]


def test_changes_arrive_in_commit_order_one_snapshot_per_commit(firestore_client, watches):
    counter = firestore_client.collection("counters").document("c")
    counter.set({"n": 0})
    seen = Snapshots()
    watches.append(counter.on_snapshot(seen))
    seen.wait_count(1)

    for n in range(1, 21):
        counter.set({"n": n})
    got = seen.wait_count(21)

    assert [c.data["n"] for s in got for c in s.changes] == list(range(21))
    times = [s.read_time for s in got]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_documents_enter_and_leave_a_filtered_query(firestore_client, watches):
    jobs = firestore_client.collection("jobs")
    jobs.document("a").set({"state": "running"})
    jobs.document("b").set({"state": "queued"})
    seen = Snapshots()
    watches.append(jobs.where(filter=FieldFilter("state", "==", "running")).on_snapshot(seen))
    seen.wait_count(1)

    jobs.document("b").update({"state": "running"})  # enters
    seen.wait_count(2)
    jobs.document("a").update({"state": "completed"})  # leaves, still exists
    seen.wait_count(3)
    jobs.document("b").update({"note": "still running"})  # changes inside
    seen.wait_count(4)
    jobs.document("c").set({"state": "queued"})  # never matches: no snapshot for it
    jobs.document("b").delete()  # leaves by deletion
    got = seen.wait_count(5)

    assert [[(c.kind, c.id) for c in s.changes] for s in got] == [
        [("ADDED", "a")], [("ADDED", "b")], [("REMOVED", "a")], [("MODIFIED", "b")], [("REMOVED", "b")]]
    assert [s.ids for s in got] == [["a"], ["a", "b"], ["b"], ["b"], []]


def test_a_document_pushed_out_of_a_limit_window_leaves_and_the_next_one_enters(firestore_client, watches):
    scores = firestore_client.collection("scores")
    for name, points in [("ann", 5), ("bob", 1), ("cid", 9)]:
        scores.document(name).set({"points": points})
    seen = Snapshots()
    watches.append(scores.order_by("points").limit(2).on_snapshot(seen))
    seen.wait_count(1)

    scores.document("dan").set({"points": 3})  # pushes ann out
    seen.wait_count(2)
    scores.document("bob").delete()  # ann comes back in
    got = seen.wait_count(3)

    assert [s.ids for s in got] == [["bob", "ann"], ["bob", "dan"], ["dan", "ann"]]
    assert sorted((c.kind, c.id) for c in got[1].changes) == [("ADDED", "dan"), ("REMOVED", "ann")]
    assert sorted((c.kind, c.id) for c in got[2].changes) == [("ADDED", "ann"), ("REMOVED", "bob")]


def test_a_multi_document_commit_arrives_as_one_snapshot(firestore_client, watches):
    jobs = firestore_client.collection("jobs")
    jobs.document("old").set({"n": 0})
    seen = Snapshots()
    watches.append(jobs.on_snapshot(seen))
    seen.wait_count(1)

    batch = firestore_client.batch()
    for i in range(5):
        batch.set(jobs.document(f"new{i}"), {"n": i})
    batch.delete(jobs.document("old"))
    batch.commit()

    @firestore.transactional
    def move(transaction):
        snapshot = jobs.document("new0").get(transaction=transaction)
        transaction.set(jobs.document("moved"), snapshot.to_dict())
        transaction.delete(jobs.document("new0"))

    move(firestore_client.transaction())
    got = seen.wait_count(3)

    assert sorted((c.kind, c.id) for c in got[1].changes) == [
        ("ADDED", "new0"), ("ADDED", "new1"), ("ADDED", "new2"), ("ADDED", "new3"), ("ADDED", "new4"), ("REMOVED", "old")]
    assert sorted((c.kind, c.id) for c in got[2].changes) == [("ADDED", "moved"), ("REMOVED", "new0")]


def test_a_collection_group_listener_sees_matching_documents_at_any_depth(firestore_client, watches):
    firestore_client.collection("jobs").document("j1").collection("logs").document("a").set({"level": "error"})
    seen = Snapshots()
    errors = firestore_client.collection_group("logs").where(filter=FieldFilter("level", "==", "error"))
    watches.append(errors.on_snapshot(seen))
    seen.wait_count(1)

    firestore_client.collection("jobs").document("j2").collection("logs").document("b").set({"level": "error"})
    firestore_client.collection("logs").document("c").set({"level": "info"})
    firestore_client.collection("x").document("y").collection("z").document("w").collection("logs").document("d").set(
        {"level": "error"})
    got = seen.wait_count(3)

    assert [[c.id for c in s.changes] for s in got] == [["a"], ["b"], ["d"]]


def test_listeners_see_only_their_own_database(firestore_emulator, firestore_client, watches):
    other = firestore_client_for(firestore_emulator, firestore_client.project + "-other")
    seen = Snapshots()
    watches.append(firestore_client.collection("jobs").on_snapshot(seen))
    seen.wait_count(1)

    other.collection("jobs").document("theirs").set({"n": 1})
    firestore_client.collection("jobs").document("mine").set({"n": 1})
    got = seen.wait_count(2)

    assert [c.id for s in got for c in s.changes] == ["mine"]


def test_resume_after_dropped_streams_loses_no_change_and_repeats_none(ours, firestore_client, watches):
    jobs = firestore_client.collection("jobs")
    jobs.document("kept").set({"n": 0})
    jobs.document("doomed").set({"n": 0})
    seen = Snapshots()
    watches.append(jobs.on_snapshot(seen))
    seen.wait_count(1)
    stop = threading.Event()
    drops = []

    def keep_dropping():
        while not stop.is_set():
            drops.append(drop_listens(ours, firestore_client.project))
            time.sleep(0.02)

    dropper = threading.Thread(target=keep_dropping)
    dropper.start()
    try:
        for i in range(150):
            jobs.document(f"d{i:03}").set({"i": i})
            if i % 10 == 0:
                jobs.document("kept").set({"n": i})
            if i % 15 == 0:  # besides the background drops, some at known points between the writes
                drops.append(drop_listens(ours, firestore_client.project))
            if i == 75:
                jobs.document("doomed").delete()
    finally:
        stop.set()
        dropper.join()
    final = sorted(doc.id for doc in jobs.stream())
    seen.wait_for(lambda got: got[-1].ids == final, what="the final state")

    assert sum(drops) >= 3, "the streams were dropped while the writes went on"
    changes = seen.changes()
    added = [c.id for c in changes if c.kind == "ADDED"]
    assert sorted(added) == sorted(set(added)) == sorted(["kept", "doomed", *(f"d{i:03}" for i in range(150))])
    assert [c.id for c in changes if c.kind == "REMOVED"] == ["doomed"]
    kept = [c.data["n"] for c in changes if c.id == "kept"]
    assert kept == sorted(set(kept)) and kept[-1] == 140  # never twice, never backwards, ends at the last


def test_fifty_listeners_under_a_write_storm_each_see_every_change_once_in_order(ours, firestore_client, watches):
    storm = firestore_client.collection("storm")
    listeners = [Snapshots() for _ in range(50)]
    for seen in listeners:
        watches.append(storm.on_snapshot(seen))
    for seen in listeners:
        seen.wait_count(1)
    writers, per_writer = 4, 30

    def write(w: int) -> None:  # each writer its own document, so its versions are ordered by its own loop
        for i in range(per_writer):
            storm.document(f"w{w}").set({"w": w, "i": i})

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    total = writers * per_writer
    for n, seen in enumerate(listeners):
        got = seen.wait_count(1 + total, timeout=120)
        changes = [c for s in got[1:] for c in s.changes]
        assert len(got) == 1 + total and len(changes) == total, f"listener {n}: one commit, one snapshot"
        times = [c.update_time for c in changes]
        assert times == sorted(times) and len(set(times)) == total, f"listener {n}: in commit order"
        for w in range(writers):
            assert [c.data["i"] for c in changes if c.data["w"] == w] == list(range(per_writer)), f"listener {n}"
    assert listen_stats(ours, firestore_client.project)["dropped"] == 0


def test_a_stuck_listener_holds_up_no_writer_and_catches_up_once_it_reads_again(start_firestore_emulator, watches):
    emulator = start_firestore_emulator("--listen-buffer", "10")
    client = firestore_client_for(emulator, "stuck-listener")
    blobs = client.collection("blobs")
    reading = threading.Event()
    stuck = Snapshots(gate=reading)  # its callback blocks, so gRPC flow control soon stops the server's sends
    watches.append(blobs.on_snapshot(stuck))
    reading.set()
    stuck.wait_count(1)
    reading.clear()

    for i in range(120):  # far more than the flow-control window and the 10 commits the feed keeps for it
        blobs.document(f"b{i:03}").set({"i": i, "blob": "x" * 200_000})
    reading.set()  # the writers all finished while the listener read nothing
    stuck.wait_for(lambda got: len(got[-1].ids) == 120, timeout=60, what="all 120 documents")

    assert listen_stats(emulator, "stuck-listener")["dropped"] >= 1, "the stream fell behind and was dropped"
    added = [c.id for c in stuck.changes() if c.kind == "ADDED"]
    assert added == sorted(added) == [f"b{i:03}" for i in range(120)]  # each once, in order, none lost


def test_unsubscribing_ends_the_stream(ours, firestore_client):
    seen = Snapshots()
    watch = firestore_client.collection("jobs").on_snapshot(seen)
    seen.wait_count(1)
    assert listen_stats(ours, firestore_client.project)["streams"] == 1

    watch.unsubscribe()

    deadline = time.monotonic() + 10
    while listen_stats(ours, firestore_client.project)["streams"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert listen_stats(ours, firestore_client.project) == {"streams": 0, "targets": 0, "dropped": 0}


def test_a_wipe_resets_listeners_to_the_empty_database(ours, firestore_client, watches):
    jobs = firestore_client.collection("jobs")
    jobs.document("a").set({})
    jobs.document("b").set({})
    seen = Snapshots()
    watches.append(jobs.on_snapshot(seen))
    seen.wait_count(1)

    ours.wipe(firestore_client.project)
    got = seen.wait_for(lambda got: got[-1].ids == [], what="the empty snapshot")
    jobs.document("c").set({})
    got = seen.wait_for(lambda got: got[-1].ids == ["c"], what="the new document")

    assert sorted(c.id for c in got[-2].changes if c.kind == "REMOVED") == ["a", "b"]


def test_each_listen_stream_counts_one_listen_call(ours, firestore_client, watches):
    seen = Snapshots()
    watches.append(firestore_client.collection("jobs").on_snapshot(seen))
    seen.wait_count(1)

    assert ours.stats(firestore_client.project) == {"Listen": 1}


def test_injected_faults_on_listen_are_recovered_by_the_client(start_firestore_emulator, watches):
    emulator = start_firestore_emulator("--fault", "UNAVAILABLE:0.3", "--fault-seed", "3")
    client = firestore_client_for(emulator, "faulty")  # its commits retry UNAVAILABLE by themselves
    jobs = client.collection("jobs")
    seen = Snapshots()
    watches.append(jobs.on_snapshot(seen))
    seen.wait_count(1)

    for i in range(20):
        jobs.document(f"j{i:02}").set({"i": i})
        if i % 5 == 4:  # each reconnection draws its own fault
            drop_listens(emulator, "faulty")
    seen.wait_for(lambda got: len(got[-1].ids) == 20, what="all 20 documents")

    added = [c.id for c in seen.changes() if c.kind == "ADDED"]
    assert added == [f"j{i:02}" for i in range(20)]
    assert emulator.stats()["faults"].get("UNAVAILABLE", 0) > 0
