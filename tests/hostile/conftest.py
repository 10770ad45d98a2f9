"""Hostile input against the real entry points. The processor's test stack is reused as it is (its fixtures are
re-exported here), and `Footprint` tells whether a request left any trace: documents, write calls, tasks."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt

from fixtures.tasks import TasksEmulator, start_tasks_emulator
from oncetask_emulators.tasks.oidc import KEY_FILE, TokenMinter
# The processor's stack, reused as it is: importing its fixtures here makes them visible to this folder's tests.
from processor.conftest import (  # noqa: F401
    Stack, api_app, cleanup_app, handler_server, make_stack, stack, storage_host)

# Calls that change documents. A refused write is still counted by the emulator, so documents are counted too.
WRITE_CALLS = ("Commit", "BatchWrite", "CreateDocument", "UpdateDocument", "DeleteDocument", "Write")


@dataclass(frozen=True)
class Footprint:
    """What a stack holds and has been asked to write: equal before and after means the request wrote nothing."""

    documents: int
    write_calls: int
    tasks_created: int

    @classmethod
    def of(cls, stack: Stack) -> Footprint:
        client = stack.services.firestore
        documents = sum(len(list(c.list_documents())) for c in client.collections())
        calls = stack.firestore_calls()
        by_queue = stack.tasks_emulator.stats()["tasks_created_by_queue"]
        created = sum(by_queue.get(queue, 0) for queue in stack.queues)
        return cls(documents, sum(calls.get(name, 0) for name in WRITE_CALLS), created)

    def documents_and_tasks(self) -> tuple[int, int]:
        return self.documents, self.tasks_created


@dataclass(frozen=True)
class KeyedTasksEmulator:
    """A Cloud Tasks emulator whose signing key we hold, so tests can mint tokens it would itself have signed
    (then bend one claim: expired, another audience)."""

    emulator: TasksEmulator
    signer: crypt.RSASigner
    public_pem: bytes


@pytest.fixture(scope="session")
def keyed_tasks_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedTasksEmulator]:
    data_dir = Path(tmp_path_factory.mktemp("keyed-tasks"))
    emulator = start_tasks_emulator("--data-dir", str(data_dir))
    try:
        # The emulator keeps its key as PEM in its data dir; the key ID is derived from the public key, as it does.
        pem = (data_dir / KEY_FILE).read_bytes()
        kid = TokenMinter(str(data_dir)).kid  # loads the same key; the kid rule lives there, not copied here
        public = serialization.load_pem_private_key(pem, password=None).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        yield KeyedTasksEmulator(emulator, crypt.RSASigner.from_string(pem, key_id=kid), public)
    finally:
        emulator.process.stop()


# Forging tokens: the pieces both token-refusal suites bend a valid token with.

def b64_json(data: dict[str, Any]) -> str:
    """One segment of a JWT: the JSON, base64url without padding."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def swap_payload(token: str, claims: dict[str, Any]) -> str:
    """A validly signed token with its payload replaced by `claims`, the header and signature kept."""
    head, _, signature = token.split(".")
    return f"{head}.{b64_json(claims)}.{signature}"


@pytest.fixture(scope="session")
def foreign_pem() -> bytes:
    """A private key nobody trusts, as PEM: what a forger signs with."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
