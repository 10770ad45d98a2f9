"""Artifacts in Cloud Storage: each lease holder writes under its own run's prefix, `jobs/{job}/{stage}/{run}/`.

Why per run, not one deterministic name per stage: a write or a delete that a worker sent before it lost its
lease can land after a successor wrote the same name (a paused worker, a request stalled in the network). With
names that carry the run (`{fencing}-{random}`), nothing a worker does can touch an object a later lease holder
made: its late upload lands beside them, never over them, and its deletes only ever name objects of runs whose
fencing token is not above its own.

The objects a job keeps are the ones its checkpoints name (each checkpoint lists what its stage wrote, and its
output may name more). Everything else under the job's prefix is garbage of runs that stopped before their
checkpoint: a later lease holder, or whoever ends the job while no one holds it, sweeps it (`JobArtifacts.sweep`),
so every object of a finished job is named by one of its checkpoints. Uploads are bounded by the writer's lease:
no attempt starts, or may still be running, once the lease may have passed to someone else.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import storage

from .errors import LeaseLost, PermanentError, RetryableError, is_retryable

MAX_UPLOAD_SECONDS = 120.0
_RUN = re.compile(r"^(\d+)-[0-9a-f]+$")


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


def new_run(fencing: int) -> str:
    """The run token of one lease acquisition: its fencing token (so sweeps can compare) and a random part (so a
    later incarnation of the same job ID, whose tokens start again at 1, never meets this one's names)."""
    return f"{fencing}-{secrets.token_hex(4)}"


def run_fencing(object_name: str) -> int:
    """The fencing token of the run that wrote `jobs/{job}/{stage}/{run}/...`; 0 for any other shape (e.g. the
    deterministic names of earlier versions), which any sweeper may remove once no checkpoint names it."""
    parts = object_name.split("/")
    match = _RUN.match(parts[3]) if len(parts) > 4 else None
    return int(match.group(1)) if match else 0


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/path` -> (bucket, path); a clear error for anything else."""
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        raise PermanentError("INVALID_ARTIFACT_URI", f"not a gs://bucket/object URI: {uri!r}")
    bucket, _, path = uri[5:].partition("/")
    return bucket, path


def artifact_uris(output: object) -> list[str]:
    """Every `gs://` URI found anywhere in a stage's output."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str) and value.startswith("gs://"):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(output)
    return found


def checkpoint_uris(checkpoint: Mapping[str, Any]) -> list[str]:
    """What a checkpoint names: the objects its stage wrote, and any URI in its output (inputs included: a skip
    needs them all to exist)."""
    return [*(checkpoint.get("artifacts") or []), *artifact_uris(checkpoint.get("output") or {})]


def named_objects(checkpoints: Mapping[str, Mapping[str, Any]], bucket: str, job_id: str) -> set[str]:
    """Object names under the job's prefix in `bucket` that its checkpoints name."""
    prefix = f"gs://{bucket}/{job_prefix(job_id)}"
    return {uri[len(f"gs://{bucket}/"):] for cp in checkpoints.values() for uri in checkpoint_uris(cp)
            if uri.startswith(prefix)}


def garbage(objects: Mapping[str, int], named: set[str], up_to_fencing: int) -> dict[str, int]:
    """The objects (name -> generation) a sweeper holding `up_to_fencing` may delete: those no checkpoint names,
    written by runs not later than its own. A later run's objects are its successor's work in progress."""
    return {name: generation for name, generation in objects.items()
            if name not in named and run_fencing(name) <= up_to_fencing}


class RunArtifacts:
    """What one stage of one run writes and reads (`ctx.artifacts`)."""

    def __init__(self, bucket: storage.Bucket, job_id: str, stage: str, run: str,
                 check: Callable[[], None] = lambda: None,
                 time_left: Callable[[], float] = lambda: MAX_UPLOAD_SECONDS, min_seconds: float = 1.0) -> None:
        self._bucket = bucket
        self.job_id = job_id
        self.stage = stage
        self.run = run
        self._check = check
        self._time_left = time_left
        self._min_seconds = min_seconds  # an upload is not started with less lease left than this
        self.written: list[str] = []  # URIs written by this stage in this run: its checkpoint lists them

    def object_name(self, name: str) -> str:
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise PermanentError("INVALID_ARTIFACT_NAME", f"artifact name {name!r} must be a relative path")
        return f"{job_prefix(self.job_id)}{self.stage}/{self.run}/{name}"

    def uri(self, name: str) -> str:
        return f"gs://{self._bucket.name}/{self.object_name(name)}"

    def write(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Write one artifact of the current stage (an upload is all or nothing); returns its URI.

        Create-only (`if_generation_match=0`). Transient failures are retried, but only while the lease certainly
        holds: each attempt is checked first and given at most the lease time left as its timeout, so no upload
        of a worker that lost its lease (paused, cut off) can still be on its way when a successor takes over."""
        blob = self._bucket.blob(self.object_name(name))
        delay = 0.05
        while True:
            self._check()  # a zombie stops here: its lease is gone, so it must not touch the job's artifacts
            left = self._time_left()
            if left < self._min_seconds:
                raise LeaseLost(message=f"too little lease left ({left:.1f}s) to upload {blob.name}")
            try:
                blob.upload_from_string(data, content_type=content_type, if_generation_match=0, retry=None,
                                        timeout=min(left, MAX_UPLOAD_SECONDS))
                break
            except gexc.PreconditionFailed as exc:
                # Our own earlier attempt may have landed although its answer was lost: the same bytes are success.
                if self._same_content(blob, data):
                    break
                raise PermanentError("ARTIFACT_EXISTS",
                                     f"{name} was already written by this stage in this run") from exc
            except Exception as exc:  # noqa: BLE001 - classified: only transient failures are retried
                if not is_retryable(exc):
                    raise
                time.sleep(min(delay, max(0.0, self._time_left() - self._min_seconds)))
                delay = min(delay * 2, 2.0)
        uri = self.uri(name)
        self.written.append(uri)
        return uri

    @staticmethod
    def _same_content(blob: storage.Blob, data: bytes) -> bool:
        try:
            blob.reload(timeout=30)
        except gexc.NotFound:
            return False
        return blob.md5_hash == base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - GCS's own

    def read(self, uri: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes; with `max_bytes`, a larger object is a PermanentError and is never downloaded."""
        bucket, path = split_uri(uri)
        blob = self._bucket.client.bucket(bucket).blob(path)
        try:
            if max_bytes is None:
                return blob.download_as_bytes()
            # Size first (metadata only), so hostile input cannot make us hold more than max_bytes; the download
            # is pinned to that generation, so an object replaced in between is not read unchecked.
            blob.reload()
            if blob.size is not None and blob.size > max_bytes:
                raise PermanentError("OBJECT_TOO_LARGE",
                                     f"{uri} is {blob.size} bytes, more than the {max_bytes} allowed")
            data = blob.download_as_bytes(if_generation_match=blob.generation)
        except gexc.NotFound as exc:
            raise PermanentError("ARTIFACT_NOT_FOUND", f"no artifact at {uri}") from exc
        if len(data) > max_bytes:
            raise PermanentError("OBJECT_TOO_LARGE", f"{uri} is more than the {max_bytes} bytes allowed")
        return data

    def exists(self, uri: str) -> bool:
        bucket, path = split_uri(uri)
        return bool(self._bucket.client.bucket(bucket).blob(path).exists())


class JobArtifacts:
    """All of one job's objects: the sweep of garbage, and the purge of what its checkpoints name."""

    def __init__(self, bucket: storage.Bucket, job_id: str) -> None:
        self._bucket = bucket
        self.job_id = job_id

    def all_exist(self, uris: Iterable[str]) -> bool:
        for uri in uris:
            bucket, path = split_uri(uri)
            if not self._bucket.client.bucket(bucket).blob(path).exists():
                return False
        return True

    def sweep(self, checkpoints: Mapping[str, Mapping[str, Any]], up_to_fencing: int) -> int:
        """Delete the job's objects that no checkpoint names and that runs up to `up_to_fencing` wrote; how many.

        Only whoever may end or run the job does this: its lease holder, or a caller that found no live holder and
        fences its own next write on the version it read. Each delete names the generation it listed, so it removes
        exactly that object, whatever happens to the name afterwards."""
        listed = {blob.name: blob.generation
                  for blob in self._bucket.client.list_blobs(self._bucket, prefix=job_prefix(self.job_id))}
        doomed = garbage(listed, named_objects(checkpoints, self._bucket.name, self.job_id), up_to_fencing)
        return sum(self._delete(name, generation) for name, generation in doomed.items())

    def delete_named(self, checkpoints: Mapping[str, Mapping[str, Any]]) -> int:
        """Delete every object the checkpoints name (the retention purge: no listing, which is billed per call)."""
        names = named_objects(checkpoints, self._bucket.name, self.job_id)
        return sum(self._delete(name) for name in sorted(names))

    def _delete(self, name: str, generation: int | None = None) -> int:
        try:
            self._bucket.blob(name).delete(if_generation_match=generation)
        except (gexc.NotFound, gexc.PreconditionFailed):
            return 0  # deleted already (another sweeper), or not the object that was listed: leave it
        return 1
