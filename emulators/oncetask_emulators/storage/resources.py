"""JSON resources as the JSON API returns them (`storage#object`, `storage#bucket`), and `fields=` selection.

Numbers that are int64 in the API (generation, metageneration, size, projectNumber) are strings, times are RFC
3339 in UTC with milliseconds, and absent values are left out rather than null, as production does. Links point
back at the emulator (the host the request came to), since the client downloads through `mediaLink`. ACLs are
not modelled, so `projection=full` returns what `noAcl` does.
"""

from __future__ import annotations

import datetime
import zlib
from typing import Any
from urllib.parse import quote

from . import errors
from .checksums import bucket_etag, object_etag
from .model import Bucket, StoredObject

MULTI_REGIONS = {"US", "EU", "ASIA"}
DUAL_REGIONS = {"NAM4", "EUR4", "ASIA1", "EUR5", "EUR7", "EUR8"}


def rfc3339(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def quote_name(name: str) -> str:
    return quote(name, safe="")


def object_resource(obj: StoredObject, base_url: str) -> dict[str, Any]:
    path = f"/b/{quote_name(obj.bucket)}/o/{quote_name(obj.name)}"
    resource: dict[str, Any] = {
        "kind": "storage#object",
        "id": f"{obj.bucket}/{obj.name}/{obj.generation}",
        "selfLink": f"{base_url}/storage/v1{path}",
        "mediaLink": f"{base_url}/download/storage/v1{path}?generation={obj.generation}&alt=media",
        "name": obj.name,
        "bucket": obj.bucket,
        "generation": str(obj.generation),
        "metageneration": str(obj.metageneration),
    }
    for key, value in obj.fields.items():
        if value is not None and key != "storageClass":
            resource[key] = value
    resource.update({
        "storageClass": obj.fields.get("storageClass") or "STANDARD",
        "size": str(obj.size),
        "crc32c": obj.crc32c,
        "etag": object_etag(obj.generation, obj.metageneration),
        "timeCreated": rfc3339(obj.created),
        "updated": rfc3339(obj.updated),
        "timeStorageClassUpdated": rfc3339(obj.created),
        "timeFinalized": rfc3339(obj.created),
    })
    if obj.md5 is not None:
        resource["md5Hash"] = obj.md5
    if obj.component_count is not None:
        resource["componentCount"] = obj.component_count
    if obj.deleted is not None:
        resource["timeDeleted"] = rfc3339(obj.deleted)
    return resource


def project_number(project: str) -> str:
    """A stable stand-in for the project's number (production reports the real one)."""
    return str(100_000_000_000 + zlib.crc32(project.encode()) % 900_000_000_000)


def location_type(location: str) -> str:
    if location in MULTI_REGIONS:
        return "multi-region"
    if location in DUAL_REGIONS:
        return "dual-region"
    return "region"


def bucket_resource(bucket: Bucket, base_url: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "kind": "storage#bucket",
        "selfLink": f"{base_url}/storage/v1/b/{quote_name(bucket.name)}",
        "id": bucket.name,
        "name": bucket.name,
        "projectNumber": project_number(bucket.project),
        "metageneration": str(bucket.metageneration),
        "location": bucket.location,
        "storageClass": bucket.storage_class,
        "etag": bucket_etag(bucket.metageneration),
        "timeCreated": rfc3339(bucket.created),
        "updated": rfc3339(bucket.updated),
        "locationType": location_type(bucket.location),
        "rpo": "DEFAULT",
        "iamConfiguration": {
            "bucketPolicyOnly": {"enabled": False},
            "uniformBucketLevelAccess": {"enabled": False},
            "publicAccessPrevention": "inherited",
        },
    }
    for key, value in bucket.fields.items():
        if value is not None:
            resource[key] = value
    return resource


# fields= ------------------------------------------------------------------------------------------------------

Selection = dict[str, "Selection | None"]  # None: the whole value


def parse_fields(spec: str) -> Selection:
    """`items(name,size),nextPageToken` or `items/name` -> {"items": {"name": None, "size": None}, ...}."""
    position = 0

    def fail(why: str) -> errors.StorageError:
        return errors.invalid(f"Invalid field selection {spec!r}: {why}", reason="invalidParameter")

    def parse_list(closing: str | None) -> Selection:
        nonlocal position
        selection: Selection = {}
        while True:
            start = position
            while position < len(spec) and spec[position] not in ",()/":
                position += 1
            name = spec[start:position].strip()
            if not name:
                raise fail(f"a field name is missing at {start}")
            sub: Selection | None = None
            if position < len(spec) and spec[position] == "(":
                position += 1
                sub = parse_list(")")
                position += 1  # the ')'
            elif position < len(spec) and spec[position] == "/":
                position += 1
                sub = parse_path()
            merge(selection, name, sub)
            if position >= len(spec):
                if closing is not None:
                    raise fail("a '(' is never closed")
                return selection
            if spec[position] == ",":
                position += 1
                continue
            if spec[position] == ")" and closing == ")":
                return selection
            raise fail(f"unexpected {spec[position]!r} at {position}")

    def parse_path() -> Selection:
        nonlocal position
        start = position
        while position < len(spec) and spec[position] not in ",()/":
            position += 1
        name = spec[start:position].strip()
        if not name:
            raise fail(f"a field name is missing at {start}")
        sub: Selection | None = None
        if position < len(spec) and spec[position] == "/":
            position += 1
            sub = parse_path()
        elif position < len(spec) and spec[position] == "(":
            position += 1
            sub = parse_list(")")
            position += 1
        return {name: sub}

    def merge(selection: Selection, name: str, sub: Selection | None) -> None:
        if name in selection and selection[name] is not None and sub is not None:
            for key, value in sub.items():
                merge(selection[name], key, value)  # type: ignore[arg-type]
        elif name in selection and (selection[name] is None or sub is None):
            selection[name] = None
        else:
            selection[name] = sub

    return parse_list(None)


def select(value: Any, selection: Selection | None) -> Any:
    """The part of a JSON value a selection names (lists are selected element by element)."""
    if selection is None:
        return value
    if isinstance(value, list):
        return [select(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    return {key: select(value[key], sub) for key, sub in selection.items() if key in value}
