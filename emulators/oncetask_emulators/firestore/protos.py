"""The google.firestore.v1 message classes the emulator works with, built without importing the Google client.

Importing the client's types (`google.cloud.firestore_v1.types`) imports the whole client and builds every
message with proto-plus: about 0.35 s, most of the emulator's start. The emulator needs only the raw protobuf
classes, so it builds them in a private descriptor pool from the file descriptors in `_descriptors.py`
(serialized from the installed client by `python -m oncetask_emulators.firestore.protos --write`; a test checks
they still match it), which takes about 0.05 s.

In a process that has already imported the client (the test suite, where pure tests hand the emulator's core
messages that the client built), the client's own classes are used instead, so that messages of one type share
one class and can be copied into each other.
"""

from __future__ import annotations

import base64
import functools
import sys

from google.protobuf import descriptor_pool, message_factory

_PACKAGE = "google.firestore.v1."


def _pool() -> descriptor_pool.DescriptorPool:
    if "google.cloud.firestore_v1" in sys.modules:
        import google.cloud.firestore_v1.types  # noqa: F401  (every file of the client in the default pool)

        return descriptor_pool.Default()
    from google.protobuf import any_pb2, duration_pb2, empty_pb2, struct_pb2, timestamp_pb2, wrappers_pb2
    from google.rpc import status_pb2
    from google.type import latlng_pb2

    from ._descriptors import FILES

    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, duration_pb2, empty_pb2, struct_pb2, timestamp_pb2, wrappers_pb2, latlng_pb2, status_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    for encoded in FILES:  # in dependency order
        pool.AddSerializedFile(base64.b64decode(encoded))
    return pool


if __name__ == "__main__":  # regenerating: the classes come from the client, whatever _descriptors.py holds
    import google.cloud.firestore_v1  # noqa: F401

POOL = _pool()


@functools.lru_cache(maxsize=None)
def message_class(full_name: str) -> type:
    """The class of a message type of the pool, by full name (`google.firestore.v1.Document`)."""
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(full_name))


def v1(name: str) -> type:
    """A google.firestore.v1 message class by its name in the package (`RunQueryRequest`)."""
    return message_class(_PACKAGE + name)


# Well-known types: from the same pool, so they can be copied into the messages' fields.
Timestamp = message_class("google.protobuf.Timestamp")
Duration = message_class("google.protobuf.Duration")
Struct = message_class("google.protobuf.Struct")
Empty = message_class("google.protobuf.Empty")

DocumentPb = v1("Document")
ValuePb = v1("Value")
MapValuePb = v1("MapValue")
DocumentMaskPb = v1("DocumentMask")
TransactionOptionsPb = v1("TransactionOptions")
WritePb = v1("Write")
WriteResultPb = v1("WriteResult")
FieldTransformPb = v1("DocumentTransform.FieldTransform")
StructuredQueryPb = v1("StructuredQuery")
CursorPb = v1("Cursor")
StructuredAggregationQueryPb = v1("StructuredAggregationQuery")
ExplainMetricsPb = v1("ExplainMetrics")


class _MessageName:
    """Stands in for a proto-plus message class where code only calls `.pb()` for the raw class."""

    def __init__(self, name: str):
        self._name = name

    def pb(self) -> type:
        return v1(self._name)

    def __getattr__(self, inner: str) -> _MessageName:  # nested messages: DocumentTransform.FieldTransform
        return _MessageName(f"{self._name}.{inner}")


class _TypesModule:
    """Stands in for a module of `google.cloud.firestore_v1.types`, so code written against the client's types
    (`firestore.RunQueryResponse.pb()`) gets this pool's classes by changing only its import."""

    def __getattr__(self, name: str) -> _MessageName:
        return _MessageName(name)


# `from .protos import document, firestore` instead of `from google.cloud.firestore_v1.types import ...`
common = document = firestore = query = write = _TypesModule()


# -- regenerating _descriptors.py from the installed client ------------------------------------------------

_FILE_PREFIX = "google/cloud/firestore_v1/types/"


def client_descriptors() -> list[bytes]:
    """The serialized firestore files of the installed client, dependencies first."""
    from google.cloud.firestore_v1.types import firestore

    ordered: dict[str, bytes] = {}

    def walk(fd) -> None:
        if fd.name in ordered:
            return
        for dependency in fd.dependencies:
            walk(dependency)
        ordered[fd.name] = fd.serialized_pb

    walk(firestore.RunQueryRequest.pb().DESCRIPTOR.file)
    return [data for name, data in ordered.items() if name.startswith(_FILE_PREFIX)]


def _write(path: str) -> None:
    import google.cloud.firestore_v1

    lines = [
        '"""Serialized google.firestore.v1 file descriptors, generated from google-cloud-firestore '
        f'{google.cloud.firestore_v1.__version__}.',
        "",
        "Regenerate: python -m oncetask_emulators.firestore.protos --write",
        '"""',
        "",
        "FILES = (",
    ]
    for data in client_descriptors():
        encoded = base64.b64encode(data).decode()
        chunks = [encoded[i : i + 100] for i in range(0, len(encoded), 100)]
        lines.append("    (")
        lines.extend(f'        "{chunk}"' for chunk in chunks)
        lines.append("    ),")
    lines.append(")")
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m oncetask_emulators.firestore.protos --write")
    import os

    _write(os.path.join(os.path.dirname(os.path.abspath(__file__)), "_descriptors.py"))
