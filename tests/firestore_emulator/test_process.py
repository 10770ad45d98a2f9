"""The emulator as a process: clean stop on SIGTERM, and committed data surviving kill -9 with --data-dir."""

from __future__ import annotations

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
