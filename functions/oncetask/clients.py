"""The one place that builds Google API clients, and so the one place that knows about emulators.

In production each client finds its credentials and endpoint by itself. Locally, the settings' emulator hosts
(the standard variables FIRESTORE_EMULATOR_HOST, CLOUD_TASKS_EMULATOR_HOST, STORAGE_EMULATOR_HOST) point them at
the emulators, over plaintext, with anonymous credentials.
"""

from __future__ import annotations

import os

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


def firestore_client(settings: Settings) -> firestore.Client:
    # google-cloud-firestore reads FIRESTORE_EMULATOR_HOST from the process environment itself; keep the two in
    # agreement when the host came from elsewhere (a .env file, a test's Settings object).
    if settings.firestore_emulator_host:
        os.environ["FIRESTORE_EMULATOR_HOST"] = settings.firestore_emulator_host
    return firestore.Client(project=settings.project_id, database=settings.database)


def storage_client(settings: Settings) -> storage.Client:
    if settings.storage_emulator_host:
        os.environ["STORAGE_EMULATOR_HOST"] = settings.storage_emulator_host
        return storage.Client(project=settings.project_id, credentials=AnonymousCredentials())
    return storage.Client(project=settings.project_id)
