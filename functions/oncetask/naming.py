"""Job IDs and task names: pure functions of their inputs, so a retried request or a crash finds the same names."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid

TASK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,500}$")
JOB_ID_RE = re.compile(r"^[a-f0-9]{32}$")


def job_id_for(owner: str, job_type: str, idempotency_key: str | None) -> str:
    """A hash of (owner, type, key), so IDs spread evenly over Firestore's key space and one caller's keys never
    collide with another's; without a key, a random ID (no de-duplication)."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    material = json.dumps([owner, job_type, idempotency_key], separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def payload_hash(job_type: str, payload: object) -> str:
    """A stable fingerprint of a request's content: the same key with a different payload is a conflict."""
    canonical = json.dumps([job_type, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_incarnation() -> str:
    """A job document's own random tag, fixed when it is created. The same key submitted again after the job was
    deleted (retention, TTL) makes a new incarnation with the same job ID: its task names and artifacts must not
    meet what the previous one left (Cloud Tasks refuses a task name for about an hour after its task ran)."""
    return secrets.token_hex(4)


def task_id(job_id: str, generation: int, incarnation: str = "") -> str:
    """The task's short ID: a new generation (manual retry, cleanup re-enqueue) gets a new name, because Cloud
    Tasks refuses a name for about an hour after its task ran; the same generation of the same incarnation always
    gets the same one, so a retried request or a second cleanup run cannot create a second task."""
    if generation < 1:
        raise ValueError(f"generation must be >= 1, got {generation}")
    name = f"{job_id}-{incarnation}-g{generation}" if incarnation else f"{job_id}-g{generation}"
    if not TASK_ID_RE.match(name):
        raise ValueError(f"not a valid task ID: {name!r}")
    return name


def task_name(queue_path: str, job_id: str, generation: int, incarnation: str = "") -> str:
    return f"{queue_path}/tasks/{task_id(job_id, generation, incarnation)}"


def is_job_id(value: str) -> bool:
    return bool(JOB_ID_RE.match(value))
