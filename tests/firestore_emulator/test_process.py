"""The emulator as a process: clean stop on SIGTERM, and committed data surviving kill -9 with --data-dir."""

from __future__ import annotations

import threading
import time

from google.api_core import exceptions

from fixtures.firestore import firestore_client_for


def test_sigterm_stops_the_emulator_cleanly(start_firestore_emulator):
    emulator = start_firestore_emulator()
    assert emulator.process is not None

    code = emulator.process.stop(timeout=5)

    assert code == 0
    assert "stopped" in emulator.process.tail()


def test_committed_writes_survive_kill_9_and_restart(start_firestore_emulator, tmp_path):
    first = start_firestore_emulator("--data-dir", str(tmp_path))
    client = firestore_client_for(first, "durable")
    for i in range(20):
        client.collection("c").document(f"d{i}").set({"i": i})
    client.collection("c").document("d0").delete()
    client.collection("c").document("d1").update({"i": 100})
    assert first.process is not None

    first.process.kill()
    second = start_firestore_emulator("--data-dir", str(tmp_path))
    client = firestore_client_for(second, "durable")

    stored = {s.id: s.get("i") for s in client.collection("c").stream()}
    assert stored == {"d1": 100, **{f"d{i}": i for i in range(2, 20)}}
    assert client.collection("c").document("d1").get().create_time is not None


def test_sigterm_stops_promptly_even_with_a_request_waiting_for_a_lock(start_firestore_emulator):
    emulator = start_firestore_emulator("--lock-timeout", "30")
    client = firestore_client_for(emulator, "stopping")
    doc = client.collection("c").document("d")
    doc.set({"n": 0})
    holder = client.transaction()
    holder._begin()
    doc.get(transaction=holder)
    waiting = threading.Thread(target=_write_expecting_an_error, args=(doc, exceptions.GoogleAPICallError))
    waiting.start()
    assert emulator.process is not None
    deadline = time.monotonic() + 5
    while "Commit" not in emulator.stats().get("total", {}) or emulator.stats()["total"]["Commit"] < 2:
        assert time.monotonic() < deadline, "the waiting commit never reached the emulator"
        time.sleep(0.02)

    started = time.monotonic()
    code = emulator.process.stop(timeout=10)

    assert code == 0
    assert time.monotonic() - started < 4
    waiting.join(timeout=10)


def _write_expecting_an_error(doc, error_type) -> None:
    try:
        doc._client._firestore_api.commit(
            request={"database": doc._client._database_string, "writes": [{"update": {"name": doc._document_path}}]},
            retry=None,
        )
    except error_type:
        pass
