"""Completion callbacks: when a job ends, an HTTPS call to a URL, or a follow-up job of a given type.

Exactly one per terminal state of a job's generation, however often the ending is retried:
- the terminal commit itself records `callback_pending` (and, for a follow-up job, creates that job's document,
  with an ID fixed by the ending job, so it can be created once only);
- after the commit, the callback's task is created under a name fixed by (job, incarnation, generation), so a second
  attempt creates nothing, and `callback_pending` is cleared; the cleanup finishes what a worker that died in
  between left pending.
A URL callback is delivered through Cloud Tasks (the callbacks queue, with its retries), signed with HMAC-SHA256
over its timestamp and body (`X-Oncetask-Signature: t=<unix seconds>,v1=<hex>`, checked with `verify_signature`),
and carries an `Idempotency-Key` the receiver can de-duplicate on.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import pydantic
from google.cloud import firestore

from .errors import InvalidRequest
from .job import Job, new_job_data
from .jobstore import JobStore, Write
from .logs import get_logger, log
from .naming import job_id_for, payload_hash, task_id
from .settings import Settings
from .stages import JobType
from .states import JobState
from .taskqueue import TaskQueue

LOG = get_logger("callbacks")
EVENTS = ("completed", "failed", "cancelled")
SIGNATURE_HEADER = "X-Oncetask-Signature"


class JobEnded(pydantic.BaseModel):
    """The payload of a follow-up job started by a callback: which job ended, and how."""

    model_config = pydantic.ConfigDict(extra="forbid")

    job_id: str
    job_type: str
    state: str
    outputs: dict[str, Any] = {}
    error: dict[str, Any] | None = None


def check_callback(spec: Mapping[str, Any], settings: Settings, registry: Mapping[str, JobType]) -> dict[str, Any]:
    """The callback as stored on the job, or `InvalidRequest` naming the field at fault (pure)."""
    url, job_type = spec.get("url"), spec.get("job_type")
    on = list(spec.get("on") or ("completed", "failed"))
    if bool(url) == bool(job_type):
        raise InvalidRequest("callback", "a callback names either a url or a job_type")
    bad = [event for event in on if event not in EVENTS]
    if bad or not on:
        raise InvalidRequest("callback.on", f"callback.on must list some of {list(EVENTS)}; got {on}")
    if url:
        parts = urlsplit(str(url))
        local = parts.hostname in ("localhost",) or _is_loopback(parts.hostname or "")
        if not (parts.scheme == "https" or (parts.scheme == "http" and local and settings.allow_local_callbacks)):
            raise InvalidRequest("callback.url", "callback.url must be an https:// URL" + (
                " (or http:// on this machine, allowed by ONCETASK_ALLOW_LOCAL_CALLBACKS)"
                if settings.allow_local_callbacks else ""))
        if not parts.hostname or len(str(url)) > 2048:
            raise InvalidRequest("callback.url", "callback.url must name a host and be at most 2048 characters")
        if not settings.callback_secret.get_secret_value():
            raise InvalidRequest("callback.url", "URL callbacks are signed, and this deployment has no "
                                                  "ONCETASK_CALLBACK_SECRET")
        return {"url": str(url), "on": on}
    if job_type not in registry:
        raise InvalidRequest("callback.job_type", f"unknown job type {job_type!r}; known: {sorted(registry)}")
    check_follow_up_model(registry[job_type])
    return {"job_type": job_type, "on": on}


def check_follow_up_model(job_type: JobType) -> None:
    """A follow-up job's payload is a `JobEnded`: its model must accept one."""
    sample = JobEnded(job_id="0" * 32, job_type="x", state="completed").model_dump(mode="json")
    try:
        job_type.validate(sample)
    except pydantic.ValidationError as exc:
        raise InvalidRequest("callback.job_type", f"job type {job_type.name!r} cannot follow a job: its payload "
                              "model must accept oncetask.JobEnded (use it as the payload model)") from exc


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str | None, body: bytes, tolerance_seconds: float = 300.0,
                     now: float | None = None) -> bool:
    """Whether a callback's `X-Oncetask-Signature` header is ours for this body, and recent enough (replays of an
    old call are refused). For the receiving side."""
    try:
        fields = dict(part.split("=", 1) for part in (header or "").split(","))
        timestamp = int(fields["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), f"t={timestamp},v1={fields.get('v1', '')}")


class Callbacks:
    def __init__(self, store: JobStore, queue: TaskQueue, settings: Settings, registry: Mapping[str, JobType]) -> None:
        self.store = store
        self.queue = queue
        self.settings = settings
        self.registry = registry

    def for_ending(self, job: Job, state: JobState) -> tuple[dict[str, Any], tuple[Write, ...]]:
        """What the terminal commit adds for the job's callback: its `callback_pending` flag and, for a follow-up
        job, that job's creation. Nothing when the job asked for no callback on this state."""
        callback = job.callback or {}
        if state.value not in callback.get("on", ()):
            return {}, ()
        writes: tuple[Write, ...] = ()
        if callback.get("job_type"):
            follow_id, data = self._follow_up(job, state, callback["job_type"])
            ref = self.store.ref(follow_id)
            writes = (lambda batch: batch.create(ref, data),)
        return {"callback_pending": True}, writes

    def fire(self, job: Job, state: JobState, outputs: dict[str, Any] | None = None,
             error: dict[str, Any] | None = None) -> None:
        """After the terminal commit (or from the cleanup): create the callback's task, then clear the flag."""
        callback = job.callback or {}
        name = task_id(job.job_id, job.generation, job.incarnation) + "-cb"
        if callback.get("url"):
            body = json.dumps({"event": f"job.{state.value}", "job_id": job.job_id, "job_type": job.job_type,
                               "state": state.value, "outputs": outputs or {}, "error": error,
                               "idempotency_key": name, "at": datetime.now(timezone.utc).isoformat()}).encode()
            headers = {SIGNATURE_HEADER: signature(self.settings.callback_secret.get_secret_value(),
                                                   int(time.time()), body),
                       "Idempotency-Key": name, "X-Oncetask-Event": f"job.{state.value}"}
            self.queue.enqueue_http(name, callback["url"], body, headers, trace_id=job.trace_id)
        elif callback.get("job_type"):
            follow_id, data = self._follow_up(job, state, callback["job_type"])
            self.queue.enqueue(follow_id, 1, data["incarnation"], queue=data["queue"], trace_id=job.trace_id)
        self.store.ref(job.job_id).update({"callback_pending": firestore.DELETE_FIELD})
        log(LOG, logging.INFO, "callback sent", job_id=job.job_id, state=state.value)

    def _follow_up(self, job: Job, state: JobState, job_type_name: str) -> tuple[str, dict[str, Any]]:
        job_type = self.registry[job_type_name]
        key = f"after:{job.job_id}:{job.incarnation}:{job.generation}"
        follow_id = job_id_for(job.owner, job_type.name, key)
        incarnation = hashlib.sha256(key.encode()).hexdigest()[:8]
        payload = JobEnded(job_id=job.job_id, job_type=job.job_type, state=state.value).model_dump(mode="json")
        queue = self.queue.route(follow_id, job_type.name)
        return follow_id, new_job_data(job_type.name, payload, payload_hash(job_type.name, payload), job.owner, key,
                                       incarnation, self.queue.name_for(follow_id, 1, incarnation, queue=queue),
                                       queue=queue, lane=self.queue.router.lane_of(job_type.name),
                                       trace_id=job.trace_id)
