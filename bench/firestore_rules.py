"""Cost of security rules evaluation in the Firestore emulator (a script, not a test).

    .venv/bin/python bench/firestore_rules.py [--decisions 5000] [--gets 500]

Two measures. In process: the time the service's rules gate takes per request (ID token decode, path
matching, evaluation, and for writes the document as the write leaves it), for typical requests of the
repository's firestore.rules and of the richer tests/firestore_emulator/rules/rich.rules, with no network
and no gRPC. Through the official client: the median latency of a document get from one emulator, as the
server client (rules bypassed) and as an end user (rules evaluated), so the share of rules in a request shows.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
import uuid
from collections.abc import Callable

from google.cloud.firestore_v1.types import document, query, write

from oncetask_emulators.firestore.errors import PermissionDenied
from oncetask_emulators.firestore.rules.auth import CALL_METADATA
from oncetask_emulators.firestore.rules.gate import RulesGate
from oncetask_emulators.firestore.rules.registry import RulesRegistry
from oncetask_emulators.firestore.rules.ruleset import Ruleset
from oncetask_emulators.firestore.store import Store
from oncetask_emulators.process import launch, python_module

import machine  # bench/machine.py, beside this script

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from fixtures.firestore import FirestoreEmulator, firestore_client_for  # noqa: E402
from fixtures.firestore_rules import end_user_client, id_token, load_rules  # noqa: E402

Value = document.Value.pb()
DocumentPb = document.Document.pb()
WritePb = write.Write.pb()
Query = query.StructuredQuery.pb()
PROJECT = "bench"
ROOT_NAME = f"projects/{PROJECT}/databases/(default)/documents"


def seeded_store() -> Store:
    store = Store()
    db = store.database(f"projects/{PROJECT}/databases/(default)")
    writes = [
        _set("jobs/alice-1", owner=Value(string_value="alice"), state=Value(string_value="running")),
        _set("users/alice", name=Value(string_value="Alice"), email=Value(string_value="alice@example.com")),
        _set("teams/t1", members=Value(array_value={"values": [Value(string_value="alice")]})),
        _set("teams/t1/docs/d1", author=Value(string_value="alice")),
    ]
    db.commit(writes)
    return store


def _set(path: str, **fields: Value) -> WritePb:
    return WritePb(update=DocumentPb(name=f"{ROOT_NAME}/{path}", fields=fields))


def owner_query() -> Query:
    q = Query()
    q.from_.add(collection_id="jobs")
    q.where.field_filter.field.field_path = "owner"
    q.where.field_filter.op = Query.FieldFilter.Operator.EQUAL
    q.where.field_filter.value.string_value = "alice"
    return q


def per_call(fn: Callable[[], None], n: int) -> float:
    """Median of 5 runs of n calls, in microseconds per call."""
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs)


def in_process(decisions: int) -> list[tuple[str, str]]:
    store = seeded_store()
    db = store.database(f"projects/{PROJECT}/databases/(default)")
    empty = Store().database(f"projects/{PROJECT}/databases/(default)")
    repo = Ruleset.parse((ROOT / "firestore.rules").read_text())
    rich = Ruleset.parse((ROOT / "tests/firestore_emulator/rules/rich.rules").read_text())
    CALL_METADATA.set([("authorization", f"Bearer {id_token('alice')}")])
    devnull = open(os.devnull, "w")  # the gate logs each denial; keep the table readable
    gate = RulesGate(RulesRegistry(repo), log=devnull)
    rich_gate = RulesGate(RulesRegistry(rich), log=devnull)
    job = f"{ROOT_NAME}/jobs/alice-1"
    team_doc = f"{ROOT_NAME}/teams/t1/docs/d1"
    q = owner_query()
    job_update = [_set("jobs/alice-1", owner=Value(string_value="alice"))]
    profile = WritePb(update=DocumentPb(name=f"{ROOT_NAME}/users/alice", fields={
        "name": Value(string_value="Alice"), "email": Value(string_value="alice@example.com")}))
    profile.update_transforms.add(field_path="createdAt").set_to_server_value = (
        write.DocumentTransform.FieldTransform.ServerValue.REQUEST_TIME)

    cases: list[tuple[str, bool, Callable[[], None]]] = [
        ("firestore.rules: get of an owned job", True, lambda: gate.authorize_reads(db, [job], db.get)),
        ("firestore.rules: query owner == uid (proved)", True, lambda: gate.authorize_query(db, ROOT_NAME, q)),
        ("firestore.rules: update of a job", False, lambda: gate.authorize_writes(db, job_update)),
        ("rich.rules: profile create, 9 checks", True, lambda: rich_gate.authorize_writes(empty, [profile])),
        ("rich.rules: team doc get, one get() in a function", True,
         lambda: rich_gate.authorize_reads(db, [team_doc], db.get)),
    ]
    rows = []
    for name, allowed, call in cases:
        assert _allowed(call) is allowed, f"{name}: expected allowed={allowed}"
        outcome = "allowed" if allowed else "denied"
        rows.append((f"{name} ({outcome})", f"{per_call(lambda: _allowed(call), decisions):.0f} µs"))
    return rows


def _allowed(call: Callable[[], None]) -> bool:
    try:
        call()
        return True
    except PermissionDenied:
        return False


def through_client(gets: int) -> list[tuple[str, str]]:
    child = launch(python_module("oncetask_emulators.firestore", "--host", "127.0.0.1", "--port", "0",
                                 "--http-port", "0"), name="firestore")
    try:
        emulator = FirestoreEmulator(child.endpoints["grpc"], child.endpoints["http"], child)
        project = f"bench-{uuid.uuid4().hex[:8]}"
        os.environ["FIRESTORE_EMULATOR_HOST"] = emulator.host
        server = firestore_client_for(emulator, project)
        server.document("jobs/alice-1").set({"owner": "alice", "state": "running"})
        load_rules(emulator, project, (ROOT / "firestore.rules").read_text())
        alice = end_user_client(emulator, project, id_token("alice"))
        rows = []
        for name, client in (("get as the server client (rules bypassed)", server),
                             ("get as the owner (rules evaluated)", alice)):
            ref = client.document("jobs/alice-1")
            for _ in range(20):
                ref.get()
            latencies = []
            for _ in range(gets):
                started = time.perf_counter()
                ref.get()
                latencies.append(time.perf_counter() - started)
            rows.append((f"{name}, median of {gets}", f"{statistics.median(latencies) * 1000:.2f} ms"))
        return rows
    finally:
        child.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=5000, help="calls per in-process measurement run")
    parser.add_argument("--gets", type=int, default=500, help="sequential gets per client")
    args = parser.parse_args()
    rows = in_process(args.decisions) + through_client(args.gets)
    print(f"Firestore rules benchmark, {machine.summary()}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>12}")


if __name__ == "__main__":
    main()
