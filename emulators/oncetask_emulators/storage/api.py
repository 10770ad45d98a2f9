"""The Cloud Storage JSON API, as the unmodified `google-cloud-storage` client calls it: routes and handlers.

Three URL families, as production serves them:

    /storage/v1/b[/{bucket}[/o[/{object}[/compose | /copyTo/b/{b}/o/{o} | /rewriteTo/b/{b}/o/{o}]]]]
    /download/storage/v1/b/{bucket}/o/{object}?alt=media
    /upload/storage/v1/b/{bucket}/o?uploadType=media|multipart|resumable   (and the session URL, ?upload_id=)

Object names travel percent-encoded, one path segment each (the client quotes '/' as %2F). Each handler parses
and validates its request, calls the store, and renders the answer; the store raises the errors production
answers. Nothing here holds state.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, unquote

from . import checksums, errors, multipart
from .checksums import object_etag
from .listing import ListRequest, Page
from .model import StoredObject
from .preconditions import Preconditions, check_etags, parse_int
from .ranges import parse_range
from .resources import bucket_resource, object_resource, parse_fields, select
from .store import Store, verify_checksums, writable_fields
from .uploads import range_header

UPLOAD_NEEDS_TYPE = ("Upload requests must include an uploadType URL parameter and a URL-encoded object name.")


@dataclass
class Request:
    method: str
    path: str  # raw (still percent-encoded), without the query
    query: dict[str, str]
    headers: Mapping[str, str]  # case-insensitive get()
    body: bytes
    base_url: str  # http://host:port, as the client reached us


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload).encode(), "application/json; charset=UTF-8")


class StorageApi:
    def __init__(self, store: Store) -> None:
        self.store = store

    def handle(self, request: Request) -> tuple[str, Response]:
        """(the API method's name, for the counters; the response). Raises StorageError for error answers."""
        segments = request.path.split("/")[1:]
        if segments[:2] == ["storage", "v1"]:
            return self._json_api(request, segments[2:])
        if segments[:3] == ["download", "storage", "v1"]:
            rest = segments[3:]
            if request.method == "GET" and len(rest) >= 4 and rest[0] == "b" and rest[2] == "o":
                return "objects.get", self.get_object(request, _segment(rest[1]), _name(rest[3:]))
        if segments[:3] == ["upload", "storage", "v1"]:
            rest = segments[3:]
            if len(rest) == 3 and rest[0] == "b" and rest[2] == "o":
                return self.upload(request, _segment(rest[1]))
        raise errors.no_such_path(request.method, request.path)

    def _json_api(self, request: Request, rest: list[str]) -> tuple[str, Response]:
        method = request.method
        if rest == ["b"] or rest == ["b", ""]:
            if method == "GET":
                return "buckets.list", self.list_buckets(request)
            if method == "POST":
                return "buckets.insert", self.insert_bucket(request)
        elif len(rest) == 2 and rest[0] == "b":
            bucket = _segment(rest[1])
            if method == "GET":
                return "buckets.get", self.get_bucket(request, bucket)
            if method in ("PATCH", "PUT"):
                return ("buckets.patch" if method == "PATCH" else "buckets.update",
                        self.patch_bucket(request, bucket, replace=method == "PUT"))
            if method == "DELETE":
                return "buckets.delete", self.delete_bucket(request, bucket)
        elif len(rest) == 3 and rest[0] == "b" and rest[2] == "o":
            bucket = _segment(rest[1])
            if method == "GET":
                return "objects.list", self.list_objects(request, bucket)
            if method == "POST":
                return self.upload(request, bucket)
        elif len(rest) >= 4 and rest[0] == "b" and rest[2] == "o":
            return self._object_route(request, _segment(rest[1]), rest[3:])
        raise errors.no_such_path(method, request.path)

    def _object_route(self, request: Request, bucket: str, parts: list[str]) -> tuple[str, Response]:
        method = request.method
        for i in range(1, len(parts) - 3):
            if parts[i] in ("copyTo", "rewriteTo") and parts[i + 1] == "b" and parts[i + 3] == "o" and method == "POST":
                source, target = (bucket, _name(parts[:i])), (_segment(parts[i + 2]), _name(parts[i + 4:]))
                if parts[i] == "copyTo":
                    return "objects.copy", self.copy(request, source, target, rewrite=False)
                return "objects.rewrite", self.copy(request, source, target, rewrite=True)
        if len(parts) >= 2 and parts[-1] == "compose" and method == "POST":
            return "objects.compose", self.compose(request, bucket, _name(parts[:-1]))
        name = _name(parts)
        if method == "GET":
            return "objects.get", self.get_object(request, bucket, name)
        if method in ("PATCH", "PUT"):
            return ("objects.patch" if method == "PATCH" else "objects.update",
                    self.patch_object(request, bucket, name, replace=method == "PUT"))
        if method == "DELETE":
            return "objects.delete", self.delete_object(request, bucket, name)
        raise errors.no_such_path(method, request.path)

    # Buckets --------------------------------------------------------------------------------------------------

    def list_buckets(self, request: Request) -> Response:
        project = _project(request)
        buckets, token = self.store.list_buckets(project, request.query.get("prefix", ""),
                                                 parse_int(request.query, "maxResults"),
                                                 request.query.get("pageToken"))
        payload: dict[str, Any] = {"kind": "storage#buckets"}
        if buckets:
            payload["items"] = [bucket_resource(b, request.base_url) for b in buckets]
        if token:
            payload["nextPageToken"] = token
        return _selected(request, payload)

    def insert_bucket(self, request: Request) -> Response:
        project = _project(request)
        bucket = self.store.create_bucket(project, _json_object(request.body))
        return _selected(request, bucket_resource(bucket, request.base_url))

    def get_bucket(self, request: Request, name: str) -> Response:
        return _selected(request, bucket_resource(self.store.get_bucket(name, request.query), request.base_url))

    def patch_bucket(self, request: Request, name: str, replace: bool) -> Response:
        bucket = self.store.patch_bucket(name, _json_object(request.body), request.query, replace)
        return _selected(request, bucket_resource(bucket, request.base_url))

    def delete_bucket(self, request: Request, name: str) -> Response:
        self.store.delete_bucket(name, request.query)
        return Response(204)

    # Objects --------------------------------------------------------------------------------------------------

    def list_objects(self, request: Request, bucket: str) -> Response:
        q = request.query
        listing = ListRequest(
            prefix=q.get("prefix", ""), delimiter=q.get("delimiter", ""), start_offset=q.get("startOffset", ""),
            end_offset=q.get("endOffset", ""), match_glob=q.get("matchGlob") or None,
            include_trailing_delimiter=_bool(q, "includeTrailingDelimiter"), versions=_bool(q, "versions"),
            max_results=parse_int(q, "maxResults") or 0, page_token=q.get("pageToken") or None)
        if _bool(q, "softDeleted"):
            page = Page()  # soft-deleted objects are not kept (see the README)
            self.store.bucket(bucket)
        else:
            page = self.store.list_objects(bucket, listing)
        payload: dict[str, Any] = {"kind": "storage#objects"}
        if page.items:
            payload["items"] = [object_resource(o, request.base_url) for o in page.items]
        if page.prefixes:
            payload["prefixes"] = page.prefixes
        if page.next_page_token:
            payload["nextPageToken"] = page.next_page_token
        return _selected(request, payload)

    def get_object(self, request: Request, bucket: str, name: str) -> Response:
        alt = request.query.get("alt", "json")
        if alt not in ("json", "media"):
            raise errors.invalid(f"Invalid value for alt: {alt!r} (json or media).")
        media = alt == "media"
        try:
            generation = parse_int(request.query, "generation", minimum=1)
            preconditions = Preconditions.from_query(request.query)
            if _bool(request.query, "softDeleted"):
                self.store.bucket(bucket)
                raise errors.object_not_found(bucket, name)  # soft-deleted objects are not kept
            obj = self.store.get_object(bucket, name, generation)
            preconditions.check(obj)
            check_etags(request.headers.get("If-Match"), request.headers.get("If-None-Match"), obj)
            if not media:
                return _selected(request, object_resource(obj, request.base_url))
            return self._media(request, obj)
        except errors.StorageError as error:
            raise error.as_plain() if media else error

    def _media(self, request: Request, obj: StoredObject) -> Response:
        """The object's bytes with the headers the client reads (generation, hashes, stored length)."""
        encoding = obj.fields.get("contentEncoding")
        data = obj.data
        headers = {
            "X-Goog-Generation": str(obj.generation),
            "X-Goog-Metageneration": str(obj.metageneration),
            "X-Goog-Hash": f"crc32c={obj.crc32c}" + (f",md5={obj.md5}" if obj.md5 else ""),
            "X-Goog-Stored-Content-Length": str(obj.size),
            "X-Goog-Stored-Content-Encoding": encoding or "identity",
            "X-Goog-Storage-Class": obj.fields.get("storageClass") or "STANDARD",
            "ETag": object_etag(obj.generation, obj.metageneration),
            "Last-Modified": formatdate(obj.updated, usegmt=True),
            "Cache-Control": obj.fields.get("cacheControl") or "private, max-age=0",
            "Accept-Ranges": "bytes",
        }
        for key, header in (("contentDisposition", "Content-Disposition"), ("contentLanguage", "Content-Language")):
            if obj.fields.get(key):
                headers[header] = obj.fields[key]
        if encoding == "gzip" and "gzip" not in (request.headers.get("Accept-Encoding") or ""):
            try:  # decompressive transcoding: a client that does not accept gzip gets the plain bytes
                data = gzip.decompress(data)
            except (OSError, EOFError):
                pass
            else:
                encoding = None
                headers["Warning"] = "214 UncompressedContent"
        if encoding:
            headers["Content-Encoding"] = encoding
        content_type = obj.fields.get("contentType") or "application/octet-stream"
        span = parse_range(request.headers.get("Range"), len(data))
        if span is None:
            return Response(200, data, content_type, headers)
        first, last = span
        headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        return Response(206, data[first:last + 1], content_type, headers)

    def patch_object(self, request: Request, bucket: str, name: str, replace: bool) -> Response:
        obj = self.store.patch_object(bucket, name, parse_int(request.query, "generation", minimum=1),
                                      _json_object(request.body), Preconditions.from_query(request.query), replace)
        return _selected(request, object_resource(obj, request.base_url))

    def delete_object(self, request: Request, bucket: str, name: str) -> Response:
        self.store.delete_object(bucket, name, parse_int(request.query, "generation", minimum=1),
                                 Preconditions.from_query(request.query))
        return Response(204)

    def copy(self, request: Request, source: tuple[str, str], target: tuple[str, str], rewrite: bool) -> Response:
        q = request.query
        overrides = _json_object(request.body) if request.body.strip() else {}
        obj = self.store.copy_object((*source, parse_int(q, "sourceGeneration", minimum=1)), target,
                                     Preconditions.from_query(q, "ifSource"), Preconditions.from_query(q), overrides)
        resource = object_resource(obj, request.base_url)
        if not rewrite:
            return _selected(request, resource)
        # Same location and class: production, too, finishes such a rewrite in one call.
        return _selected(request, {"kind": "storage#rewriteResponse", "totalBytesRewritten": str(obj.size),
                                   "objectSize": str(obj.size), "done": True, "resource": resource})

    def compose(self, request: Request, bucket: str, name: str) -> Response:
        body = _json_object(request.body)
        sources_raw = body.get("sourceObjects")
        if not isinstance(sources_raw, list):
            raise errors.required("sourceObjects")
        sources = []
        for source in sources_raw:
            if not isinstance(source, dict) or not isinstance(source.get("name"), str) or not source["name"]:
                raise errors.required("sourceObjects.name")
            conditions = source.get("objectPreconditions") or {}
            if not isinstance(conditions, dict):
                raise errors.invalid("objectPreconditions must be an object.")
            sources.append((source["name"], _optional_int(source.get("generation"), "sourceObjects.generation"),
                            _optional_int(conditions.get("ifGenerationMatch"),
                                          "sourceObjects.objectPreconditions.ifGenerationMatch")))
        destination = body.get("destination") or {}
        if not isinstance(destination, dict):
            raise errors.invalid("destination must be an object resource.")
        delete_sources = body.get("deleteSourceObjects") is True or _bool(request.query, "deleteSourceObjects")
        obj = self.store.compose(bucket, name, sources, writable_fields(destination, None),
                                 Preconditions.from_query(request.query), delete_sources)
        return _selected(request, object_resource(obj, request.base_url))

    # Uploads --------------------------------------------------------------------------------------------------

    def upload(self, request: Request, bucket: str) -> tuple[str, Response]:
        q = request.query
        if "upload_id" in q:
            if request.method in ("PUT", "POST"):
                return "objects.insert(resumable chunk)", self.upload_chunk(request, q["upload_id"])
            if request.method == "DELETE":
                self.store.cancel_session(q["upload_id"])
                return "objects.insert(resumable cancel)", Response(499)
            raise errors.no_such_path(request.method, request.path)
        if request.method != "POST":
            raise errors.no_such_path(request.method, request.path)
        kind = q.get("uploadType")
        if kind == "media":
            return "objects.insert(media)", self.simple_upload(request, bucket)
        if kind == "multipart":
            return "objects.insert(multipart)", self.multipart_upload(request, bucket)
        if kind == "resumable":
            return "objects.insert(resumable)", self.open_resumable(request, bucket)
        raise errors.invalid(UPLOAD_NEEDS_TYPE if kind is None else f"Invalid uploadType {kind!r}: media, "
                             f"multipart or resumable.")

    def simple_upload(self, request: Request, bucket: str) -> Response:
        name = request.query.get("name")
        if not name:
            raise errors.required(UPLOAD_NEEDS_TYPE)
        fields = {"contentType": request.headers.get("Content-Type") or "application/octet-stream"}
        return self._insert(request, bucket, name, request.body, fields, {})

    def multipart_upload(self, request: Request, bucket: str) -> Response:
        parts = multipart.parse(request.body, request.headers.get("Content-Type"))
        name = parts.metadata.get("name") or request.query.get("name")
        if not isinstance(name, str) or not name:
            raise errors.required("name")
        fields = writable_fields(parts.metadata, None)
        fields.setdefault("contentType", parts.media_content_type or "application/octet-stream")
        claimed = {kind: parts.metadata[key] for kind, key in (("crc32c", "crc32c"), ("md5", "md5Hash"))
                   if isinstance(parts.metadata.get(key), str)}
        return self._insert(request, bucket, name, parts.media, fields, claimed)

    def _insert(self, request: Request, bucket: str, name: str, data: bytes, fields: dict[str, Any],
                claimed: dict[str, str]) -> Response:
        # Checksums are computed here, outside the store's lock; the store only checks and installs.
        crc32c, md5 = checksums.crc32c(data), checksums.md5(data)
        verify_checksums({**checksums.parse_hash_header(request.headers.get("X-Goog-Hash") or ""), **claimed},
                         crc32c, md5)
        obj = self.store.insert_object(bucket, name, data, fields, Preconditions.from_query(request.query),
                                       crc32c, md5)
        return _selected(request, object_resource(obj, request.base_url))

    def open_resumable(self, request: Request, bucket: str) -> Response:
        metadata = _json_object(request.body) if request.body.strip() else {}
        name = metadata.get("name") or request.query.get("name")
        if not isinstance(name, str) or not name:
            raise errors.required("name")
        declared = request.headers.get("X-Upload-Content-Length")
        try:
            declared_size = int(declared) if declared is not None else None
        except ValueError:
            raise errors.invalid(f"Invalid X-Upload-Content-Length: {declared!r}.") from None
        if declared_size is not None and declared_size < 0:
            raise errors.invalid(f"Invalid X-Upload-Content-Length: {declared!r}.")
        content_type = (request.headers.get("X-Upload-Content-Type") or metadata.get("contentType")
                        or "application/octet-stream")
        writable_fields(metadata, None)  # bad metadata is refused now, not after the data has been sent
        session = self.store.open_session(bucket, name, metadata, dict(request.query), str(content_type),
                                          declared_size)
        location = (f"{request.base_url}/upload/storage/v1/b/{quote(bucket, safe='')}/o?uploadType=resumable"
                    f"&name={quote(name, safe='')}&upload_id={session.upload_id}")
        return Response(200, b"", None, {"Location": location, "X-GUploader-UploadID": session.upload_id})

    def upload_chunk(self, request: Request, upload_id: str) -> Response:
        kept, obj = self.store.put_chunk(upload_id, request.headers.get("Content-Range"), request.body,
                                         request.headers.get("X-Goog-Hash"))
        if obj is None:
            return Response(308, b"", None, {**range_header(kept), "X-GUploader-UploadID": upload_id})
        session_query = self.store.session(upload_id).query
        resource = object_resource(obj, request.base_url)
        fields = session_query.get("fields")
        return json_response(select(resource, parse_fields(fields)) if fields else resource)


# Parsing helpers --------------------------------------------------------------------------------------------------

def _segment(raw: str) -> str:
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise errors.invalid(f"The path segment {raw!r} is not valid percent-encoded UTF-8.") from None


def _name(parts: list[str]) -> str:
    """An object name from its path segment(s): one encoded segment, or several if '/' came unencoded."""
    return "/".join(_segment(p) for p in parts)


def _project(request: Request) -> str:
    project = request.query.get("project")
    if not project:
        raise errors.required("project")
    return project


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise errors.parse_error() from None
    if not isinstance(value, dict):
        raise errors.invalid("The request body must be a JSON object.")
    return value


def _bool(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return False
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise errors.invalid(f"Invalid value for {name}: {value!r} (true or false).")
    return lowered == "true"


def _optional_int(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise errors.invalid(f"Invalid value for {what}: {value!r}.")
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise errors.invalid(f"Invalid value for {what}: {value!r}.") from None


def _selected(request: Request, payload: dict[str, Any]) -> Response:
    fields = request.query.get("fields")
    return json_response(select(payload, parse_fields(fields)) if fields else payload)

