"""Transactions through the official client: pessimistic locks, contention, snapshots, read_time reads."""

from __future__ import annotations

import threading
import time

import pytest
from google.api_core import exceptions
from google.cloud import firestore

from fixtures.firestore import firestore_client_for


def _run_threads(count: int, target) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a transaction thread hung"


def test_concurrent_increments_count_exactly_the_successful_transactions(firestore_client):
    counter = firestore_client.collection("counters").document("c")
    counter.set({"n": 0})
    successes: list[int] = []
    failures: list[BaseException] = []

    def worker(_: int) -> None:
        @firestore.transactional  # one per thread: the client's wrapper keeps per-call state
        def increment(transaction):
            value = counter.get(transaction=transaction).get("n")
            transaction.update(counter, {"n": value + 1})

        for _ in range(5):
            try:
                increment(firestore_client.transaction())
                successes.append(1)
            except ValueError as exhausted:  # the client gave up after its 5 attempts: allowed, counted
                failures.append(exhausted)

    _run_threads(6, worker)

    assert counter.get().get("n") == len(successes)
    assert len(successes) >= 15  # contention aborts some attempts, but most transactions get through


def test_two_workers_claiming_one_document_exactly_one_wins_every_time(firestore_client):
    for round_number in range(25):
        job = firestore_client.collection("jobs").document(f"job{round_number}")
        job.set({"owner": None})
        winners: list[str] = []
        start = threading.Barrier(2)

        @firestore.transactional
        def claim(transaction, worker: str) -> bool:
            snapshot = job.get(transaction=transaction)
            if snapshot.get("owner") is not None:
                return False
            transaction.update(job, {"owner": worker})
            return True

        def worker(i: int) -> None:
            start.wait()
            if claim(firestore_client.transaction(), f"w{i}"):
                winners.append(f"w{i}")

        _run_threads(2, worker)

        assert len(winners) == 1, f"round {round_number}: winners {winners}"
        assert job.get().get("owner") == winners[0]


def test_commit_of_a_transaction_whose_read_was_overtaken_is_aborted(firestore_client):
    doc = firestore_client.collection("c").document("d")
    doc.set({"n": 0})
    older = firestore_client.transaction()
    younger = firestore_client.transaction()
    older._begin()
    younger._begin()
    doc.get(transaction=younger)
    doc.get(transaction=older)

    older.update(doc, {"n": "older"})
    older._commit()  # the older transaction wounds the younger reader and wins
    younger.update(doc, {"n": "younger"})

    with pytest.raises(exceptions.Aborted):
        younger._commit()
    assert doc.get().get("n") == "older"


def test_rollback_releases_the_read_locks(firestore_client):
    doc = firestore_client.collection("c").document("d")
    doc.set({"n": 0})
    transaction = firestore_client.transaction()
    transaction._begin()
    doc.get(transaction=transaction)

    transaction._rollback()
    started = time.monotonic()
    doc.set({"n": 1})

    assert time.monotonic() - started < 1.0
    assert doc.get().get("n") == 1


def test_write_waiting_on_an_idle_transaction_is_aborted_after_the_lock_timeout(start_firestore_emulator):
    emulator = start_firestore_emulator("--lock-timeout", "0.5")
    client = firestore_client_for(emulator, "lock-timeout")
    doc = client.collection("c").document("d")
    doc.set({"n": 0})
    holder = client.transaction()
    holder._begin()
    doc.get(transaction=holder)  # a shared lock, then the holder goes idle

    started = time.monotonic()
    with pytest.raises(exceptions.Aborted, match="contention"):
        doc._client._firestore_api.commit(  # one attempt, no client retry
            request={"database": client._database_string, "writes": [_set_write(doc, 1)]}
        )
    assert 0.4 < time.monotonic() - started < 3.0


def test_idle_transaction_expires_and_its_commit_is_invalid(start_firestore_emulator):
    emulator = start_firestore_emulator("--transaction-idle", "0.3")
    client = firestore_client_for(emulator, "expiry")
    doc = client.collection("c").document("d")
    transaction = client.transaction()
    transaction._begin()
    doc.get(transaction=transaction)

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the reaper runs every second; wait until the lock is gone
        try:
            client._firestore_api.commit(
                request={"database": client._database_string, "writes": [_set_write(doc, 1)]}, timeout=1
            )
            break
        except exceptions.Aborted:
            continue
    transaction.update(doc, {"n": 2})
    with pytest.raises(exceptions.InvalidArgument, match="invalid or expired"):
        transaction._commit()
    assert doc.get().get("n") == 1


def test_read_only_transaction_sees_one_snapshot(firestore_client):
    a = firestore_client.collection("c").document("a")
    b = firestore_client.collection("c").document("b")
    a.set({"n": 1})
    b.set({"n": 1})
    transaction = firestore_client.transaction(read_only=True)
    transaction._begin()
    assert a.get(transaction=transaction).get("n") == 1

    b.set({"n": 2})

    assert b.get(transaction=transaction).get("n") == 1
    assert [s.get("n") for s in firestore_client.collection("c").stream(transaction=transaction)] == [1, 1]
    transaction._rollback()


def test_read_at_read_time_sees_the_past_version(firestore_client):
    doc = firestore_client.collection("c").document("d")
    first = doc.set({"n": 1}).update_time
    doc.set({"n": 2})
    doc.delete()

    assert doc.get(read_time=first).get("n") == 1
    assert [s.get("n") for s in firestore_client.collection("c").stream(read_time=first)] == [1]
    assert not doc.get().exists


def test_query_in_a_transaction_locks_what_it_returns(firestore_client):
    doc = firestore_client.collection("q").document("d")
    doc.set({"state": "ready"})
    older = firestore_client.transaction()
    younger = firestore_client.transaction()
    older._begin()
    younger._begin()
    assert len(list(firestore_client.collection("q").stream(transaction=younger))) == 1

    doc.get(transaction=older)
    older.update(doc, {"state": "taken"})
    older._commit()
    younger.update(doc, {"state": "also taken"})

    with pytest.raises(exceptions.Aborted):
        younger._commit()
    assert doc.get().get("state") == "taken"


def _set_write(doc, n: int) -> dict:
    from google.cloud.firestore_v1 import _helpers

    return {"update": {"name": doc._document_path, "fields": _helpers.encode_dict({"n": n})}}


def test_first_read_can_begin_the_transaction_with_new_transaction(firestore_client):
    api = firestore_client._firestore_api
    doc = firestore_client.collection("c").document("d")
    doc.set({"n": 1})

    responses = list(
        api.batch_get_documents(
            request={
                "database": firestore_client._database_string,
                "documents": [doc._document_path],
                "new_transaction": {"read_write": {}},
            }
        )
    )
    transaction = responses[0].transaction
    api.commit(
        request={
            "database": firestore_client._database_string,
            "writes": [_set_write(doc, 2)],
            "transaction": transaction,
        }
    )

    assert transaction
    assert responses[0].found.fields["n"].integer_value == 1
    assert doc.get().get("n") == 2
