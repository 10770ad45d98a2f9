"""The lock table on its own: wound-wait decides every conflict, so waits are bounded and never circular."""

from __future__ import annotations

import threading
import time

import pytest

from oncetask_emulators.firestore.locks import LockTable, LockTimeout, Mode, Owner, Wounded


def test_shared_locks_do_not_conflict():
    table, a, b = LockTable(), Owner(), Owner()

    table.acquire(a, ["d"], Mode.SHARED, timeout=0.1)
    table.acquire(b, ["d"], Mode.SHARED, timeout=0.1)

    assert a.held == {"d": Mode.SHARED} and b.held == {"d": Mode.SHARED}


def test_older_writer_wounds_a_younger_reader():
    table, older, younger = LockTable(), Owner(), Owner()
    table.acquire(younger, ["d"], Mode.SHARED, timeout=0.1)

    table.acquire(older, ["d"], Mode.EXCLUSIVE, timeout=0.1)

    assert younger.wounded and younger.held == {}
    assert not table.begin_commit(younger)


def test_younger_writer_waits_for_an_older_reader_then_times_out():
    table, older, younger = LockTable(), Owner(), Owner()
    table.acquire(older, ["d"], Mode.SHARED, timeout=0.1)

    started = time.monotonic()
    with pytest.raises(LockTimeout):
        table.acquire(younger, ["d"], Mode.EXCLUSIVE, timeout=0.2)

    assert 0.15 < time.monotonic() - started < 1.0
    assert not older.wounded


def test_younger_writer_gets_the_lock_when_the_older_one_releases():
    table, older, younger = LockTable(), Owner(), Owner()
    table.acquire(older, ["d"], Mode.EXCLUSIVE, timeout=0.1)
    threading.Timer(0.1, table.release_all, args=(older,)).start()

    table.acquire(younger, ["d"], Mode.EXCLUSIVE, timeout=2.0)

    assert younger.held == {"d": Mode.EXCLUSIVE}


def test_crossed_upgrades_end_with_the_older_winning_not_a_deadlock():
    table, older, younger = LockTable(), Owner(), Owner()
    table.acquire(older, ["a"], Mode.SHARED, timeout=0.1)
    table.acquire(younger, ["b"], Mode.SHARED, timeout=0.1)
    outcome: dict[str, str] = {}

    def younger_wants_a() -> None:
        try:
            table.acquire(younger, ["a"], Mode.EXCLUSIVE, timeout=5.0)
            outcome["younger"] = "locked"
        except Wounded:
            outcome["younger"] = "wounded"

    waiter = threading.Thread(target=younger_wants_a)
    waiter.start()
    # Whether or not the younger one is already waiting, the older one's upgrade wounds it.
    table.acquire(older, ["b"], Mode.EXCLUSIVE, timeout=5.0)
    waiter.join(timeout=5.0)

    assert outcome == {"younger": "wounded"}
    assert older.held == {"a": Mode.SHARED, "b": Mode.EXCLUSIVE}


def test_a_committing_owner_is_not_wounded():
    table, older, younger = LockTable(), Owner(), Owner()
    table.acquire(younger, ["d"], Mode.EXCLUSIVE, timeout=0.1)
    assert table.begin_commit(younger)

    with pytest.raises(LockTimeout):
        table.acquire(older, ["d"], Mode.SHARED, timeout=0.1)
    assert not younger.wounded


def test_a_non_transactional_writer_waits_instead_of_wounding():
    table, reader, writer = LockTable(), Owner(), Owner(wounds=False)
    table.acquire(reader, ["d"], Mode.SHARED, timeout=0.1)
    writer.priority = (0.0, 0, 0)  # older than anyone, and still it only waits

    with pytest.raises(LockTimeout):
        table.acquire(writer, ["d"], Mode.EXCLUSIVE, timeout=0.1)
    assert not reader.wounded


def test_a_transaction_wounds_a_non_transactional_writer_in_its_way_even_if_younger():
    table, writer, transaction = LockTable(), Owner(wounds=False), Owner()
    table.acquire(writer, ["a"], Mode.EXCLUSIVE, timeout=0.1)  # the writer also wants "b", which...
    table.acquire(transaction, ["b"], Mode.SHARED, timeout=0.1)  # ...a younger transaction has read

    table.acquire(transaction, ["a"], Mode.SHARED, timeout=0.1)  # no deadlock: the writer gives way

    assert writer.wounded and writer.held == {}
    assert transaction.held == {"a": Mode.SHARED, "b": Mode.SHARED}
