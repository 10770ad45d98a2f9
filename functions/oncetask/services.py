"""An app's wiring: settings and job types -> clients -> adapters -> the core, built once and reused.

Cloud Functions keeps a process warm across requests, so clients (and their gRPC channels) live here rather
than being rebuilt per request. `App.services` builds one; tests may build their own from their own `Settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from google.cloud import firestore, storage

from . import clients
from .auth import ApiTokens, TokenVerifier
from .callers import api_tokens
from .cleanup import Cleanup
from .commands import Commands
from .jobstore import JobStore
from .processor import Processor
from .routing import Router
from .settings import Settings
from .stages import JobType
from .stats import QueueSpec, StatsService
from .taskqueue import QueueReader, TaskQueue

if TYPE_CHECKING:
    from .app import Schedule


@dataclass
class Services:
    settings: Settings
    job_types: Mapping[str, JobType]
    router: Router
    schedules: Mapping[str, Schedule] = field(default_factory=dict)

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
        return TaskQueue(clients.tasks_client(self.settings), self.settings, self.router)

    @cached_property
    def verifier(self) -> TokenVerifier:
        s = self.settings
        return TokenVerifier(s.oidc_certs_url, s.certs_cache_seconds, require_google_issuer=False)

    @cached_property
    def api_tokens(self) -> ApiTokens:
        """The API's check of Google and Firebase ID tokens (callers.py decides what a verified one may do)."""
        return api_tokens(self.settings)

    @cached_property
    def commands(self) -> Commands:
        return Commands(self.store, self.queue, self.bucket, self.settings, self.job_types)

    @cached_property
    def processor(self) -> Processor:
        return Processor(self.store, self.bucket, self.settings, self.job_types, self.queue)

    @cached_property
    def openapi(self) -> dict[str, Any]:
        from .openapi import openapi_document  # noqa: PLC0415 - the API's models: only the API function needs them

        return openapi_document(self.job_types)

    @cached_property
    def queue_reader(self) -> QueueReader:
        return QueueReader(clients.tasks_stats_client(self.settings), self.settings)

    @property
    def queue_specs(self) -> list[QueueSpec]:
        """Every queue of the app: each lane's and job type's (router.plan), and the callbacks'."""
        specs = [QueueSpec(spec.name, "jobs", spec.lane, spec.job_type) for spec in self.router.plan()]
        return [*specs, QueueSpec(self.settings.callback_queue, "callbacks")]

    @cached_property
    def stats(self) -> StatsService:
        s = self.settings
        return StatsService(self.store, self.queue_reader, sorted(self.job_types), self.queue_specs,
                            s.lease_ttl_seconds, s.stats_cache_seconds)

    @cached_property
    def cleanup(self) -> Cleanup:
        return Cleanup(self.store, self.queue, self.bucket, self.settings, self.job_types, self.queue_reader,
                       [spec.name for spec in self.queue_specs])

    def close(self) -> None:
        """Close what this wiring opened: the cancel listener first (it listens through the Firestore client), then
        the clients. A deployed function's wiring lives as long as its process; tests and tools that wire an app
        again and again call this, or each wiring's listener would linger (30 s) with its threads and stream."""
        built = self.__dict__
        if "processor" in built and built["processor"].cancel_watch is not None:
            built["processor"].cancel_watch.close()
        if "firestore" in built:
            built["firestore"].close()
        if "queue" in built:
            built["queue"].client.transport.close()
