"""Artifacts in Cloud Storage under deterministic names: `jobs/{job_id}/{stage}/{name}`.

Deterministic names make a rerun overwrite rather than duplicate. Two guards keep a zombie worker (one whose
lease lapsed) from writing: `check()` before every write (the lease, checked locally), and in production an
`if_generation_match=0` precondition (create only): the processor deletes a stage's partial artifacts before
rerunning it, so a legitimate write never meets an existing object, while a zombie's late write does.
(gcp-storage-emulator ignores preconditions; the first guard is what the tests exercise.)
"""

from __future__ import annotations

from collections.abc import Callable

from google.api_core import exceptions as gexc
from google.cloud import storage

from .errors import PermanentError, RetryableError
from .policy import call_with_retry


def object_prefix(job_id: str, stage: str | None = None) -> str:
    return f"jobs/{job_id}/" if stage is None else f"jobs/{job_id}/{stage}/"


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/path` -> (bucket, path); a clear error for anything else."""
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        raise PermanentError("INVALID_ARTIFACT_URI", f"not a gs://bucket/object URI: {uri!r}")
    bucket, _, path = uri[5:].partition("/")
    return bucket, path


class ArtifactStore:
    """One job's artifacts, writing under the current stage's prefix."""

    def __init__(self, bucket: storage.Bucket, job_id: str, stage: str,
                 check: Callable[[], None] = lambda: None, use_preconditions: bool = True) -> None:
        self._bucket = bucket
        self.job_id = job_id
        self.stage = stage
        self._check = check
        self._use_preconditions = use_preconditions

    def uri(self, name: str, stage: str | None = None) -> str:
        return f"gs://{self._bucket.name}/{self.object_name(name, stage)}"

    def object_name(self, name: str, stage: str | None = None) -> str:
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise PermanentError("INVALID_ARTIFACT_NAME", f"artifact name {name!r} must be a relative path")
        return object_prefix(self.job_id, stage or self.stage) + name

    def write(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Write one artifact of the current stage (atomically: an upload is all or nothing); returns its URI."""
        self._check()  # a zombie stops here: its lease is gone, so it must not touch the job's artifacts
        blob = self._bucket.blob(self.object_name(name))
        precondition = {"if_generation_match": 0} if self._use_preconditions else {}
        try:
            # Retried on transient errors inside the attempt: the name is deterministic, so a repeat overwrites.
            call_with_retry(lambda: blob.upload_from_string(data, content_type=content_type, **precondition))
        except gexc.PreconditionFailed as exc:
            # Another writer created it since this stage started: we may be the zombie. Retry decides.
            raise RetryableError("ARTIFACT_CONFLICT", f"{blob.name} was written by someone else") from exc
        return self.uri(name)

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

    def exists(self, name_or_uri: str) -> bool:
        """Whether an artifact exists: a name in the current stage, or any `gs://` URI."""
        if name_or_uri.startswith("gs://"):
            bucket, path = split_uri(name_or_uri)
            return self._bucket.client.bucket(bucket).blob(path).exists()
        return self._bucket.blob(self.object_name(name_or_uri)).exists()

    def delete_prefix(self, stage: str | None = None) -> int:
        """Delete every artifact of one stage (default: the current one); returns how many were deleted."""
        return delete_objects(self._bucket, object_prefix(self.job_id, stage or self.stage))


def delete_objects(bucket: storage.Bucket, prefix: str) -> int:
    deleted = 0
    for blob in bucket.client.list_blobs(bucket, prefix=prefix):
        try:
            blob.delete()
            deleted += 1
        except gexc.NotFound:
            pass  # deleted concurrently (another cleanup): the goal is reached either way
    return deleted
