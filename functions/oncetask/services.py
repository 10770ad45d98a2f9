"""The process's wiring: settings -> clients -> adapters -> the core, built once per process and reused.

Cloud Functions keeps a process warm across requests, so clients (and their gRPC channels) live here rather
than being rebuilt per request. Tests build their own `Services` from their own `Settings`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property

from google.cloud import firestore, storage

from . import clients
from .auth import TokenVerifier
from .cleanup import Cleanup
from .commands import Commands
from .jobstore import JobStore
from .processor import Processor
from .settings import Settings, get_settings
from .taskqueue import TaskQueue


@dataclass
class Services:
    settings: Settings

    @cached_property
    def firestore(self) -> firestore.Client:
        return clients.firestore_client(self.settings)

    @cached_property
    def bucket(self) -> storage.Bucket:
        return clients.storage_client(self.settings).bucket(self.settings.bucket)

    @cached_property
    def store(self) -> JobStore:
        return JobStore(self.firestore)

    @cached_property
    def queue(self) -> TaskQueue:
        return TaskQueue(clients.tasks_client(self.settings), self.settings)

    @cached_property
    def verifier(self) -> TokenVerifier:
        s = self.settings
        return TokenVerifier(s.oidc_certs_url, s.certs_cache_seconds, require_google_issuer=False)

    @cached_property
    def commands(self) -> Commands:
        return Commands(self.store, self.queue, self.bucket, self.settings)

    @cached_property
    def processor(self) -> Processor:
        return Processor(self.store, self.bucket, self.settings)

    @cached_property
    def cleanup(self) -> Cleanup:
        return Cleanup(self.store, self.queue, self.bucket, self.settings)


_lock = threading.Lock()
_services: Services | None = None


def get_services() -> Services:
    global _services
    with _lock:
        if _services is None:
            _services = Services(get_settings())
        return _services


def set_services(services: Services | None) -> None:
    """Install the services the entry points use (tests and the local stack)."""
    global _services
    with _lock:
        _services = services
