"""Official Google clients pointed at a local stack's emulators, built without changing this process's
environment. (`oncetask.clients` sets FIRESTORE_EMULATOR_HOST / STORAGE_EMULATOR_HOST process-wide, which is right
for a function process, but would repoint everything else in a process that hosts a stack, such as a test run.)"""

from __future__ import annotations

import os

from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage


def storage_api(host: str, project: str) -> storage.Client:
    """`host` as STORAGE_EMULATOR_HOST takes it: http://H:P."""
    return storage.Client(project=project, credentials=AnonymousCredentials(),
                          client_options={"api_endpoint": host})


def firestore_api(host: str, project: str) -> firestore.Client:
    """`host` as FIRESTORE_EMULATOR_HOST takes it: H:P. The client reads the variable once, when it is built."""
    previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    try:
        return firestore.Client(project=project, credentials=AnonymousCredentials())
    finally:
        if previous is None:
            del os.environ["FIRESTORE_EMULATOR_HOST"]
        else:
            os.environ["FIRESTORE_EMULATOR_HOST"] = previous
