"""The one place that builds Google API clients, and so the one place that knows about emulators.

In production each client finds its credentials and endpoint by itself. Locally, the settings' emulator hosts
(the standard variables FIRESTORE_EMULATOR_HOST, CLOUD_TASKS_EMULATOR_HOST, STORAGE_EMULATOR_HOST) point them at
the emulators, over plaintext, with anonymous credentials.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage, tasks_v2

from .settings import Settings


def tasks_client(settings: Settings) -> tasks_v2.CloudTasksClient:
    host = settings.cloud_tasks_emulator_host
    if not host:
        return tasks_v2.CloudTasksClient()
    import grpc  # noqa: PLC0415 - only the emulator path needs a hand-made channel

    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(host)))


def tasks_stats_client(settings: Settings) -> Any:
    """The v2beta3 client: only that API version reads a queue's `stats` (the same queues as v2's). Imported here,
    when the figures are first asked for: a second generated client costs ~40 ms at every cold start otherwise."""
    from google.cloud import tasks_v2beta3  # noqa: PLC0415

    host = settings.cloud_tasks_emulator_host
    if not host:
        return tasks_v2beta3.CloudTasksClient()
    import grpc  # noqa: PLC0415

    from google.cloud.tasks_v2beta3.services.cloud_tasks.transports import CloudTasksGrpcTransport

    return tasks_v2beta3.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(host)))


_environ_lock = threading.Lock()


def firestore_client(settings: Settings) -> firestore.Client:
    host = settings.firestore_emulator_host
    if not host:
        return firestore.Client(project=settings.project_id, database=settings.database)
    # google-cloud-firestore reads FIRESTORE_EMULATOR_HOST from the environment once, when a client is built: set it
    # for that moment only, so one process can hold clients of several emulators (a test run, a local stack).
    with _environ_lock:
        previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = host
        try:
            return firestore.Client(project=settings.project_id, database=settings.database,
                                    credentials=AnonymousCredentials())
        finally:
            if previous is None:
                del os.environ["FIRESTORE_EMULATOR_HOST"]
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = previous


def storage_client(settings: Settings) -> storage.Client:
    if settings.storage_emulator_host:
        return storage.Client(project=settings.project_id, credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": settings.storage_emulator_host})
    return storage.Client(project=settings.project_id)
