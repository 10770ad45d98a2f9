"""One Listen stream driven in-process (no gRPC): the quiet stream's heartbeat, which is a minute long on a
real emulator."""

from __future__ import annotations

import threading

from google.cloud.firestore_v1.types import firestore

from oncetask_emulators.firestore.listen import Listens
from oncetask_emulators.firestore.listen import stream as stream_module
from oncetask_emulators.firestore.stats import CallCounters
from oncetask_emulators.firestore.store import Store

DATABASE = "projects/p/databases/(default)"
ListenRequest = firestore.ListenRequest.pb()
ListenResponse = firestore.ListenResponse.pb()


def test_a_quiet_stream_sends_a_fresh_resume_token_every_heartbeat(monkeypatch):
    monkeypatch.setattr(stream_module, "HEARTBEAT_SECONDS", 0.2)
    store = Store()
    stream = stream_module.ListenStream(store, Listens(store, CallCounters()).feed, CallCounters())
    request = ListenRequest(database=DATABASE, add_target=firestore.Target.pb()(
        target_id=1, documents=firestore.Target.DocumentsTarget.pb()(documents=[f"{DATABASE}/documents/jobs/a"])))
    leave = threading.Event()
    threading.Thread(target=stream.read_requests, args=(_connected([request], leave),), daemon=True).start()
    responses = stream.responses()

    initial = [ListenResponse.FromString(r) if isinstance(r, bytes) else r for r in _take(responses, 3)]
    beats = [ListenResponse.FromString(r) if isinstance(r, bytes) else r for r in _take(responses, 2)]
    stream.close()
    leave.set()

    kinds = [r.target_change.target_change_type for r in initial + beats]
    assert kinds == [1, 3, 0, 0, 0]  # ADD, CURRENT, NO_CHANGE, then two heartbeats
    times = [r.target_change.read_time.ToMicroseconds() for r in initial[2:] + beats]
    assert times == sorted(times) and len(set(times)) == 3
    assert all(r.target_change.resume_token and not r.target_change.target_ids for r in beats)


def _connected(requests, leave: threading.Event):
    """The requests of a client that then stays connected until `leave` (the end of the requests would be a
    half-close, which ends the stream)."""
    yield from requests
    leave.wait()


def _take(responses, n):
    return [next(responses) for _ in range(n)]
