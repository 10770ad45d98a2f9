"""The benchmark's baseline: the work of a no-op job without the guarantees. No lease, no checkpoints, no dedup,
no token check: one Firestore write per delivery, then 200. Served by functions-framework like the real handler:

    FIRESTORE_EMULATOR_HOST=... BARE_PROJECT=... python -m functions_framework --source bench/bare_handler.py \
        --target bare
"""

from __future__ import annotations

import os
import threading

import flask
import functions_framework
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

_lock = threading.Lock()
_client: firestore.Client | None = None


def _db() -> firestore.Client:
    global _client
    with _lock:  # one client (one gRPC channel) per process, as the real handler keeps its Services
        if _client is None:
            _client = firestore.Client(project=os.environ["BARE_PROJECT"], credentials=AnonymousCredentials())
        return _client


@functions_framework.http
def bare(request: flask.Request) -> flask.Response:
    _db().collection("bare").document().set({"body": request.get_data(as_text=True)[:200]})
    return flask.Response("{}", status=200, mimetype="application/json")
