"""The emulator's state: buckets, object versions and upload sessions, changed only under one lock.

Every write checks its preconditions and installs its result inside the same critical section, so two writers
racing with `ifGenerationMatch=0` can never both create an object: exactly one succeeds, the other gets 412.
Generations come from one clock, the time in microseconds as in production, and grow strictly even when two
writes fall in the same microsecond or the wall clock steps back. Stored objects are never mutated in place: a
metadata change installs a new `StoredObject`, so a reader holding the old one (a download in progress) sees
one consistent version. With a persistence layer, every change is committed there before the lock is released.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import checksums, errors
from .listing import ListRequest, Page, list_page
from .model import Bucket, StoredObject
from .names import check_bucket_name, check_object_name
from .persistence import SqlitePersistence
from .preconditions import Preconditions, check_bucket
from .uploads import Session, SessionEnded, plan_chunk

STORAGE_CLASSES = {"STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE", "MULTI_REGIONAL", "REGIONAL",
                   "DURABLE_REDUCED_AVAILABILITY"}
# Bucket settings kept verbatim (the emulator does not act on them, except `versioning`).
BUCKET_SETTINGS = {"labels", "versioning", "lifecycle", "cors", "website", "logging", "retentionPolicy",
                   "defaultEventBasedHold", "billing", "encryption", "autoclass", "softDeletePolicy",
                   "customPlacementConfig", "hierarchicalNamespace", "objectRetention", "iamConfiguration", "rpo"}
# Object metadata a client may write (name, checksums and acl are handled apart).
OBJECT_FIELDS = {"contentType", "contentEncoding", "contentDisposition", "contentLanguage", "cacheControl",
                 "customTime", "metadata", "storageClass", "eventBasedHold", "temporaryHold", "retention",
                 "contexts"}
MAX_COMPOSE_SOURCES = 32
MAX_COMPONENTS = 1024


class Store:
    def __init__(self, persistence: SqlitePersistence | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.buckets: dict[str, Bucket] = {}
        self.sessions: dict[str, Session] = {}
        self._persistence = persistence
        self._now = wall_clock
        self._last_generation = 0
        if persistence is not None:
            self._load(persistence)

    def _load(self, persistence: SqlitePersistence) -> None:
        self._last_generation = persistence.last_generation()
        for bucket in persistence.buckets():
            self.buckets[bucket.name] = bucket
        for obj in persistence.objects():
            bucket = self.buckets.get(obj.bucket)
            if bucket is None:
                continue
            if obj.deleted is None:
                bucket.set_live(obj)
            else:
                bucket.add_noncurrent(obj)
            self._last_generation = max(self._last_generation, obj.generation)
        for session in persistence.sessions():
            self.sessions[session.upload_id] = session

    def _next_generation(self) -> int:
        # Production's generations are timestamps in microseconds; strictly increasing here whatever the clock does.
        self._last_generation = max(int(self._now() * 1_000_000), self._last_generation + 1)
        return self._last_generation

    # Buckets --------------------------------------------------------------------------------------------------

    def create_bucket(self, project: str, body: dict[str, Any]) -> Bucket:
        name = check_bucket_name(body.get("name"))
        location = body.get("location") or "US"
        storage_class = body.get("storageClass") or "STANDARD"
        if not isinstance(location, str):
            raise errors.invalid(f"Invalid location: {location!r}.")
        if not isinstance(storage_class, str) or storage_class.upper() not in STORAGE_CLASSES:
            raise errors.invalid(f"Invalid storage class: {storage_class!r}.")
        settings = _bucket_settings(body)
        with self.lock:
            existing = self.buckets.get(name)
            if existing is not None:
                if existing.project == project:
                    raise errors.conflict("Your previous request to create the named bucket succeeded and you "
                                          "already own it.")
                raise errors.conflict("The requested bucket name is not available. The bucket namespace is shared "
                                      "by all users of the system. Please select a different name and try again.")
            now = self._now()
            bucket = Bucket(name, project, now, now, 1, location.upper(), storage_class.upper(), settings)
            if self._persistence is not None:
                self._persistence.save_bucket(bucket)
            self.buckets[name] = bucket
            return bucket

    def bucket(self, name: str) -> Bucket:
        with self.lock:
            bucket = self.buckets.get(name)
            if bucket is None:
                raise errors.bucket_not_found()
            return bucket

    def get_bucket(self, name: str, query: dict[str, str]) -> Bucket:
        with self.lock:
            bucket = self.bucket(name)
            check_bucket(query, bucket.metageneration)
            return bucket

    def list_buckets(self, project: str, prefix: str, max_results: int | None,
                     page_token: str | None) -> tuple[list[Bucket], str | None]:
        after = _decode_name_token(page_token) if page_token else ""
        limit = min(max_results or 1000, 1000)
        with self.lock:
            names = sorted(n for n, b in self.buckets.items()
                           if b.project == project and n.startswith(prefix) and n > after)
            chosen = [self.buckets[n] for n in names[:limit]]
        token = _encode_name_token(chosen[-1].name) if len(names) > limit else None
        return chosen, token

    def patch_bucket(self, name: str, body: dict[str, Any], query: dict[str, str], replace: bool) -> Bucket:
        with self.lock:
            bucket = self.bucket(name)
            check_bucket(query, bucket.metageneration)
            storage_class = body.get("storageClass", bucket.storage_class) or bucket.storage_class
            if not isinstance(storage_class, str) or storage_class.upper() not in STORAGE_CLASSES:
                raise errors.invalid(f"Invalid storage class: {storage_class!r}.")
            if replace:
                settings = _bucket_settings(body)
            else:
                settings = dict(bucket.fields)
                for key, value in body.items():
                    if key not in BUCKET_SETTINGS:
                        continue
                    if value is None:
                        settings.pop(key, None)
                    elif key == "labels":
                        settings["labels"] = _merge_map(settings.get("labels") or {}, value, "labels")
                    else:
                        settings.update(_bucket_settings({key: value}))
            updated = dataclasses.replace(bucket, fields=settings, storage_class=storage_class.upper(),
                                          metageneration=bucket.metageneration + 1, updated=self._now())
            if self._persistence is not None:
                self._persistence.save_bucket(updated)
            self.buckets[name] = updated
            return updated

    def delete_bucket(self, name: str, query: dict[str, str]) -> None:
        with self.lock:
            bucket = self.bucket(name)
            check_bucket(query, bucket.metageneration)
            if not bucket.is_empty():
                raise errors.conflict("The bucket you tried to delete is not empty.")
            if self._persistence is not None:
                self._persistence.delete_bucket(name)
            del self.buckets[name]

    # Objects --------------------------------------------------------------------------------------------------

    def get_object(self, bucket_name: str, name: str, generation: int | None) -> StoredObject:
        with self.lock:
            obj = self.bucket(bucket_name).version(name, generation)
            if obj is None:
                raise errors.object_not_found(bucket_name, name)
            return obj

    def insert_object(self, bucket_name: str, name: str, data: bytes, fields: dict[str, Any],
                      preconditions: Preconditions, crc32c: str | None = None, md5: str | None = None) -> StoredObject:
        """Create a new generation of `name` (its checksums computed now unless given)."""
        check_object_name(name)
        crc32c = crc32c if crc32c is not None else checksums.crc32c(data)
        md5 = md5 if md5 is not None else checksums.md5(data)
        with self.lock:
            bucket = self.bucket(bucket_name)
            return self._install(bucket, name, data, fields, preconditions, crc32c, md5, None)

    def _install(self, bucket: Bucket, name: str, data: bytes, fields: dict[str, Any], preconditions: Preconditions,
                 crc32c: str, md5: str | None, component_count: int | None,
                 session: Session | None = None) -> StoredObject:
        """Check the preconditions against the live version and make the new object live (lock held)."""
        current = bucket.live.get(name)
        preconditions.check(current)
        now = self._now()
        obj = StoredObject(bucket.name, name, self._next_generation(), 1, len(data), crc32c, md5, now, now,
                           fields, data, None, component_count)
        put_records, delete = self._retire(bucket, current, now)
        if session is not None:
            session.result = (bucket.name, name, obj.generation)
            session.data = bytearray()
        if self._persistence is not None:
            self._persistence.write_objects([obj], put_records, delete, self._last_generation, session)
        if current is not None and bucket.versioning:
            bucket.add_noncurrent(put_records[0])
        bucket.set_live(obj)
        return obj

    @staticmethod
    def _retire(bucket: Bucket, current: StoredObject | None,
                now: float) -> tuple[list[StoredObject], list[StoredObject]]:
        """What becomes of a live version that is replaced or deleted: noncurrent in a versioned bucket,
        gone otherwise. Returns (records to rewrite, versions to delete) for persistence."""
        if current is None:
            return [], []
        if bucket.versioning:
            return [dataclasses.replace(current, deleted=now)], []
        return [], [current]

    def delete_object(self, bucket_name: str, name: str, generation: int | None,
                      preconditions: Preconditions) -> None:
        with self.lock:
            bucket = self.bucket(bucket_name)
            obj = bucket.version(name, generation)
            if obj is None:
                raise errors.object_not_found(bucket_name, name)
            preconditions.check(obj)
            live = bucket.live.get(name) is obj
            if live and generation is None:
                put_records, delete = self._retire(bucket, obj, self._now())
            else:
                put_records, delete = [], [obj]  # a named generation is deleted for good
            if self._persistence is not None:
                self._persistence.write_objects([], put_records, delete, self._last_generation)
            if live:
                bucket.drop_live(name)
            else:
                bucket.noncurrent[name].remove(obj)
                if not bucket.noncurrent[name]:
                    del bucket.noncurrent[name]
            if put_records:
                bucket.add_noncurrent(put_records[0])

    def patch_object(self, bucket_name: str, name: str, generation: int | None, body: dict[str, Any],
                     preconditions: Preconditions, replace: bool) -> StoredObject:
        """objects.patch (merge; null removes) or objects.update (replace every writable field)."""
        with self.lock:
            bucket = self.bucket(bucket_name)
            obj = bucket.version(name, generation)
            if obj is None:
                raise errors.object_not_found(bucket_name, name)
            preconditions.check(obj)
            fields = writable_fields(body, obj.fields if not replace else None)
            if replace and "storageClass" in obj.fields:
                fields.setdefault("storageClass", obj.fields["storageClass"])
            updated = dataclasses.replace(obj, fields=fields, metageneration=obj.metageneration + 1,
                                          updated=self._now())
            if self._persistence is not None:
                self._persistence.write_objects([], [updated], [], self._last_generation)
            if bucket.live.get(name) is obj:
                bucket.live[name] = updated
            else:
                versions = bucket.noncurrent[name]
                versions[versions.index(obj)] = updated
            return updated

    def copy_object(self, source: tuple[str, str, int | None], destination: tuple[str, str],
                    source_preconditions: Preconditions, preconditions: Preconditions,
                    overrides: dict[str, Any]) -> StoredObject:
        """objects.copy and objects.rewrite: the source's bytes and metadata (overridden by `overrides`)."""
        check_object_name(destination[1])
        with self.lock:
            src_bucket = self.bucket(source[0])
            dst_bucket = self.bucket(destination[0])
            src = src_bucket.version(source[1], source[2])
            if src is None:
                raise errors.object_not_found(source[0], source[1])
            source_preconditions.check(src)
            fields = writable_fields(overrides, dict(src.fields)) if overrides else dict(src.fields)
            return self._install(dst_bucket, destination[1], src.data, fields, preconditions, src.crc32c, src.md5,
                                 src.component_count)

    def compose(self, bucket_name: str, name: str, sources: Sequence[tuple[str, int | None, int | None]],
                fields: dict[str, Any], preconditions: Preconditions, delete_sources: bool) -> StoredObject:
        """objects.compose: `sources` are (name, generation, ifGenerationMatch) in the destination's bucket."""
        check_object_name(name)
        if not sources:
            raise errors.required("sourceObjects")
        if len(sources) > MAX_COMPOSE_SOURCES:
            raise errors.invalid(f"The number of source components provided ({len(sources)}) exceeds the maximum "
                                 f"({MAX_COMPOSE_SOURCES}).")
        with self.lock:
            bucket = self.bucket(bucket_name)
            parts: list[StoredObject] = []
            for source_name, generation, if_generation_match in sources:
                obj = bucket.version(source_name, generation)
                if obj is None:
                    raise errors.object_not_found(bucket_name, source_name)
                if if_generation_match is not None and obj.generation != if_generation_match:
                    raise errors.precondition_failed()
                parts.append(obj)
            components = sum(p.component_count or 1 for p in parts)
            if components > MAX_COMPONENTS:
                raise errors.invalid(f"The composite object would have {components} components, more than the "
                                     f"{MAX_COMPONENTS} allowed.")
            data = b"".join(p.data for p in parts)
            obj = self._install(bucket, name, data, fields, preconditions, checksums.crc32c(data), None, components)
            if delete_sources:
                for part in parts:
                    if part.name != name and bucket.version(part.name, part.generation) is part:
                        self.delete_object(bucket_name, part.name, part.generation, Preconditions())
            return obj

    def list_objects(self, bucket_name: str, request: ListRequest) -> Page:
        with self.lock:
            bucket = self.bucket(bucket_name)
            if not request.versions:
                return list_page(bucket.names, lambda n: (bucket.live[n],), request)
            names = sorted(set(bucket.names) | {n for n, v in bucket.noncurrent.items() if v})

            def versions_of(name: str) -> list[StoredObject]:
                live = bucket.live.get(name)
                return [*bucket.noncurrent.get(name, ()), *((live,) if live else ())]

            return list_page(names, versions_of, request)

    # Resumable uploads ------------------------------------------------------------------------------------------

    def open_session(self, bucket_name: str, name: str, metadata: dict[str, Any], query: dict[str, str],
                     content_type: str, declared_size: int | None) -> Session:
        check_object_name(name)
        Preconditions.from_query(query)  # a malformed precondition is refused now; it is checked at the end
        with self.lock:
            self.bucket(bucket_name)
            session = Session(secrets.token_urlsafe(48), bucket_name, name, metadata, query, content_type,
                              declared_size, self._now())
            if self._persistence is not None:
                self._persistence.save_session(session)
            self.sessions[session.upload_id] = session
            return session

    def session(self, upload_id: str) -> Session:
        with self.lock:
            session = self.sessions.get(upload_id)
            if session is None:
                raise errors.upload_not_found()
            return session

    def put_chunk(self, upload_id: str, content_range: str | None, body: bytes,
                  hash_header: str | None) -> tuple[int, StoredObject | None]:
        """Feed a session; (bytes kept, None) while incomplete, (size, object) once the object exists."""
        with self.lock:
            session = self.session(upload_id)
            finished = self._finished(session)
            if finished is not None:
                return finished.size, finished
            try:
                plan = plan_chunk(len(session.data), session.declared_size, content_range, body)
            except SessionEnded as error:
                self._fail(session, error)  # production refuses the session from then on
                raise
            if plan.append:
                offset = len(session.data)
                session.data.extend(plan.append)
                if self._persistence is not None:
                    self._persistence.append_chunk(session, offset, plan.append)
            if plan.finish_size is None:
                return len(session.data), None
            try:
                return plan.finish_size, self._finish(session, hash_header)
            except errors.StorageError as error:
                self._fail(session, error)
                raise

    def _finish(self, session: Session, hash_header: str | None) -> StoredObject:
        data = bytes(session.data)
        crc32c, md5 = checksums.crc32c(data), checksums.md5(data)
        expected = checksums.parse_hash_header(hash_header or "")
        for kind, given in (("crc32c", session.metadata.get("crc32c")), ("md5", session.metadata.get("md5Hash"))):
            if given and kind not in expected:
                expected[kind] = given
        verify_checksums(expected, crc32c, md5)
        bucket = self.bucket(session.bucket)
        fields = writable_fields(session.metadata, None)
        fields.setdefault("contentType", session.content_type)
        return self._install(bucket, session.name, data, fields, Preconditions.from_query(session.query), crc32c,
                             md5, None, session)

    def _finished(self, session: Session) -> StoredObject | None:
        """The object a finished session made (as it was then), or its error again; None while it runs."""
        if session.error is not None:
            raise errors.StorageError(**session.error)
        if session.result is None:
            return None
        bucket_name, name, generation = session.result
        bucket = self.buckets.get(bucket_name)
        obj = bucket.version(name, generation) if bucket else None
        if obj is None:
            raise errors.object_not_found(bucket_name, name)
        return obj

    def _fail(self, session: Session, error: errors.StorageError) -> None:
        session.error = {"status": error.status, "reason": error.reason, "message": error.message,
                         "plain": error.plain}
        session.data = bytearray()
        if self._persistence is not None:
            self._persistence.finish_session(session)

    def cancel_session(self, upload_id: str) -> None:
        with self.lock:
            if self.sessions.pop(upload_id, None) is None:
                raise errors.upload_not_found()
            if self._persistence is not None:
                self._persistence.delete_session(upload_id)

    def close(self) -> None:
        with self.lock:
            if self._persistence is not None:
                self._persistence.close()
                self._persistence = None


# Pure helpers -----------------------------------------------------------------------------------------------------

def verify_checksums(expected: dict[str, str], crc32c: str, md5: str) -> None:
    """400 if a checksum the client sent (in the metadata or x-goog-hash) differs from the data's."""
    if "crc32c" in expected and expected["crc32c"] != crc32c:
        raise errors.checksum_mismatch("CRC32C", expected["crc32c"], crc32c)
    if "md5" in expected and expected["md5"] != md5:
        raise errors.checksum_mismatch("MD5", expected["md5"], md5)


def writable_fields(body: dict[str, Any], base: dict[str, Any] | None) -> dict[str, Any]:
    """The object's writable metadata after a patch of `base` by `body` (null removes, `metadata` merges key by
    key), or, with `base` None, exactly what `body` gives (an insert or a full update)."""
    fields = dict(base) if base is not None else {}
    for key, value in body.items():
        if key not in OBJECT_FIELDS:
            continue  # read-only or unmodelled (name, bucket, size, acl, ...): ignored, as production ignores them
        if value is None:
            fields.pop(key, None)
        elif key == "metadata":
            fields["metadata"] = _merge_map(fields.get("metadata") or {} if base is not None else {}, value,
                                            "metadata")
            if not fields["metadata"]:
                del fields["metadata"]
        elif key in ("eventBasedHold", "temporaryHold"):
            if not isinstance(value, bool):
                raise errors.invalid(f"Invalid value for {key}: {value!r} is not a boolean.")
            fields[key] = value
        elif key == "customTime":
            fields[key] = _rfc3339(value, key)
        elif key == "storageClass":
            if not isinstance(value, str) or value.upper() not in STORAGE_CLASSES:
                raise errors.invalid(f"Invalid storage class: {value!r}.")
            fields[key] = value.upper()
        elif key in ("retention", "contexts"):
            if not isinstance(value, dict):
                raise errors.invalid(f"Invalid value for {key}: expected an object.")
            fields[key] = value
        else:
            if not isinstance(value, str):
                raise errors.invalid(f"Invalid value for {key}: {value!r} is not a string.")
            fields[key] = value
    return fields


def _merge_map(current: dict[str, str], change: object, what: str) -> dict[str, str]:
    if not isinstance(change, dict):
        raise errors.invalid(f"Invalid value for {what}: expected an object of strings.")
    merged = dict(current)
    for key, value in change.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, (dict, list)):
            raise errors.invalid(f"Invalid value for {what}.{key}: values are strings.")
        else:
            merged[key] = value if isinstance(value, str) else json_scalar(value)
    return merged


def json_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rfc3339(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise errors.invalid(f"Invalid value for {key}: {value!r} is not an RFC 3339 time.")
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.invalid(f"Invalid value for {key}: {value!r} is not an RFC 3339 time.") from None
    return value


def _bucket_settings(body: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in body.items():
        if key not in BUCKET_SETTINGS or value is None:
            continue
        if key == "labels":
            value = _merge_map({}, value, "labels")
        elif key == "versioning" and not (isinstance(value, dict) and isinstance(value.get("enabled", False), bool)):
            raise errors.invalid("Invalid value for versioning: expected {\"enabled\": true|false}.")
        settings[key] = value
    return settings


def _encode_name_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_name_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise errors.invalid(f"Invalid page token: {token!r}.") from None


__all__ = ["Store", "verify_checksums", "writable_fields"]
