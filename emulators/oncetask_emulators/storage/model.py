"""What the store holds: buckets and object versions, plain data with their JSON records for persistence."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class StoredObject:
    """One generation of one object. `fields` are its writable metadata (contentType, metadata, cacheControl, ...)
    as the JSON API spells them; everything else is computed by the service."""

    bucket: str
    name: str
    generation: int
    metageneration: int
    size: int
    crc32c: str
    md5: str | None  # None for a composed object, as in production
    created: float  # epoch seconds: timeCreated
    updated: float  # epoch seconds: updated (metadata or data)
    fields: dict[str, Any]
    data: bytes = b""
    deleted: float | None = None  # when it stopped being the live version (versioned buckets only)
    component_count: int | None = None  # composed objects

    def record(self) -> dict[str, Any]:
        """Everything but the bytes, for the persistence layer."""
        record = asdict(self)
        del record["data"]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], data: bytes) -> StoredObject:
        return cls(**record, data=data)


@dataclass
class Bucket:
    name: str
    project: str
    created: float
    updated: float
    metageneration: int
    location: str
    storage_class: str
    fields: dict[str, Any]  # the other settings, verbatim: labels, versioning, lifecycle, cors, ...
    # Runtime indexes, rebuilt from the objects at load time (never persisted as part of the bucket):
    live: dict[str, StoredObject] = field(default_factory=dict, repr=False)
    names: list[str] = field(default_factory=list, repr=False)  # sorted live names, for listing
    noncurrent: dict[str, list[StoredObject]] = field(default_factory=dict, repr=False)

    @property
    def versioning(self) -> bool:
        versioning = self.fields.get("versioning")
        return isinstance(versioning, dict) and versioning.get("enabled") is True

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "project": self.project, "created": self.created, "updated": self.updated,
                "metageneration": self.metageneration, "location": self.location,
                "storage_class": self.storage_class, "fields": self.fields}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Bucket:
        return cls(**record)

    def is_empty(self) -> bool:
        return not self.live and not any(self.noncurrent.values())

    def set_live(self, obj: StoredObject) -> None:
        if obj.name not in self.live:
            bisect.insort(self.names, obj.name)
        self.live[obj.name] = obj

    def drop_live(self, name: str) -> StoredObject | None:
        obj = self.live.pop(name, None)
        if obj is not None:
            index = bisect.bisect_left(self.names, name)
            del self.names[index]
        return obj

    def add_noncurrent(self, obj: StoredObject) -> None:
        versions = self.noncurrent.setdefault(obj.name, [])
        bisect.insort(versions, obj, key=lambda o: o.generation)

    def version(self, name: str, generation: int | None) -> StoredObject | None:
        """The live object (generation None), or that generation, live or noncurrent."""
        live = self.live.get(name)
        if generation is None or (live is not None and live.generation == generation):
            return live
        return next((o for o in self.noncurrent.get(name, ()) if o.generation == generation), None)
