"""Helpers for the Listen tests: record what `on_snapshot` callbacks see, drive raw Listen streams through the
official client's GAPIC layer (targets built as the client's Watch builds them, responses summarized), and
reach the emulator's Listen endpoints (drop streams, count them)."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from google.cloud import firestore
from google.cloud.firestore_v1.types import ListenRequest, ListenResponse

from fixtures.firestore import FirestoreEmulator

TIMEOUT = 20.0


@dataclass(frozen=True)
class Change:
    kind: str  # ADDED, MODIFIED, REMOVED
    id: str
    data: dict | None
    update_time: object


@dataclass(frozen=True)
class Snapshot:
    ids: list[str]  # the documents of the snapshot, in the query's order
    changes: list[Change]
    read_time: object


@dataclass
class Snapshots:
    """An `on_snapshot` callback that keeps every snapshot it is given, and waits for the ones a test expects."""

    gate: threading.Event | None = None  # while cleared, the callback blocks (a consumer that stopped reading)
    received: list[Snapshot] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, docs, changes, read_time) -> None:
        snapshot = Snapshot(
            ids=[doc.id for doc in docs],
            changes=[Change(c.type.name, c.document.id, c.document.to_dict() if c.type.name != "REMOVED" else None,
                            c.document.update_time) for c in changes],
            read_time=read_time,
        )
        if self.gate is not None:
            self.gate.wait()
        with self._cond:
            self.received.append(snapshot)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[Snapshot]], object], timeout: float = TIMEOUT,
                 what: str = "snapshots") -> list[Snapshot]:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.received), timeout):
                raise AssertionError(f"timed out waiting for {what}; got {self.received!r}")
            return list(self.received)

    def wait_count(self, n: int, timeout: float = TIMEOUT) -> list[Snapshot]:
        return self.wait_for(lambda got: len(got) >= n, timeout, f"{n} snapshots")

    def latest_ids(self) -> list[str]:
        with self._cond:
            return self.received[-1].ids if self.received else []

    def changes(self) -> list[Change]:
        with self._cond:
            return [c for s in self.received for c in s.changes]


class RawListen:
    """One Listen stream opened through the official client's GAPIC method, fed request by request."""

    def __init__(self, client: firestore.Client):
        self.database = client._database_string
        self._requests: queue.Queue = queue.Queue()
        self._responses: queue.Queue = queue.Queue()
        self.error: Exception | None = None
        self._call = None
        self._client = client
        threading.Thread(target=self._read, daemon=True).start()

    def _request_iterator(self) -> Iterator[ListenRequest]:
        while True:
            request = self._requests.get()
            if request is None:
                return
            yield request

    def _read(self) -> None:
        try:
            # The GAPIC call waits for the first response before it returns: opened here, not in __init__.
            # No retry: its retry of a refused stream would reuse the request iterator, and tests want the error.
            self._call = self._client._firestore_api.listen(
                requests=self._request_iterator(), metadata=self._client._rpc_metadata, retry=None)
            for response in self._call:
                self._responses.put(response)
        except Exception as error:  # noqa: BLE001 - kept for the test to inspect
            self.error = error
        self._responses.put(None)

    def send(self, **fields) -> None:
        self._requests.put(ListenRequest(database=fields.pop("database", self.database), **fields))

    def add(self, target_id: int, **target) -> None:
        self.send(add_target={"target_id": target_id, **target})

    def next(self, timeout: float = TIMEOUT) -> ListenResponse | None:
        """The next response; None once the stream has ended (see `error`)."""
        return self._responses.get(timeout=timeout)

    def until_global(self, timeout: float = TIMEOUT) -> list[ListenResponse]:
        """Responses up to and including the next global NO_CHANGE (a consistent snapshot)."""
        got = []
        while True:
            response = self.next(timeout)
            if response is None:
                raise AssertionError(f"the stream ended ({self.error!r}) after {got!r}")
            got.append(response)
            if kind(response) == "NO_CHANGE" and not response.target_change.target_ids:
                return got

    def quiet(self, seconds: float = 0.3) -> list[ListenResponse]:
        """Whatever arrives within `seconds` (expected: nothing)."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self._responses.get(timeout=left))
            except queue.Empty:
                break
        return got

    def half_close(self) -> None:
        """End the request side only (no more requests), as the Node.js client's unsubscribe does; the call
        stays open until the server ends it."""
        self._requests.put(None)

    def close(self) -> None:
        self._requests.put(None)
        if self._call is not None:
            self._call.cancel()


def kind(response: ListenResponse) -> str:
    """A short name for a response: the target change type (ADD, CURRENT...) or the response field."""
    which = ListenResponse.pb(response).WhichOneof("response_type")
    if which == "target_change":
        return response.target_change.target_change_type.name
    return which


def documents_url(emulator: FirestoreEmulator, project: str) -> str:
    return f"http://{emulator.http}/emulator/v1/projects/{project}/databases/(default)"


def drop_listens(emulator: FirestoreEmulator, project: str) -> int:
    """Make the emulator close every Listen stream of the project's database (UNAVAILABLE); returns how many."""
    request = urllib.request.Request(documents_url(emulator, project) + "/listen:drop", method="POST")
    return json.loads(urllib.request.urlopen(request, timeout=5).read())["dropped"]


def listen_stats(emulator: FirestoreEmulator, project: str) -> dict:
    return json.loads(urllib.request.urlopen(documents_url(emulator, project) + "/listen", timeout=5).read())


def name_of(client, path: str) -> str:
    return f"{client._database_string}/documents/{path}"


def query_target(client, query) -> dict:
    """A query target as the client's Watch builds it (a collection listens through its query)."""
    query = query._query() if hasattr(query, "_query") else query
    parent, _ = query._parent._parent_info()
    return {"query": {"parent": parent, "structured_query": query._to_protobuf()}}


def docs_target(client, *paths: str) -> dict:
    return {"documents": {"documents": [name_of(client, p) for p in paths]}}


def summary(responses) -> list[tuple]:
    """(kind, target_ids or document) per response, for comparing message sequences."""
    out = []
    for r in responses:
        k = kind(r)
        if k == "document_change":
            out.append((k, r.document_change.document.name.rsplit("/", 1)[-1],
                        list(r.document_change.target_ids), list(r.document_change.removed_target_ids)))
        elif k in ("document_delete", "document_remove"):
            body = getattr(r, k)
            out.append((k, body.document.rsplit("/", 1)[-1], list(body.removed_target_ids)))
        elif k == "filter":
            out.append((k, r.filter.target_id, r.filter.count))
        else:
            out.append((k, list(r.target_change.target_ids)))
    return out
