"""Delete preconditions through the official client: `exists` and `update_time` on a document written moments
before succeed, as in production, through Commit, BatchWrite and the DeleteDocument RPC alike; an update_time no
document can have (in the future, or finer than a microsecond) is INVALID_ARGUMENT, as the Python client's
system tests find production answers."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.protobuf import timestamp_pb2


@pytest.fixture
def ref(firestore_client):
    return firestore_client.collection("c").document("d")


def test_a_delete_with_exists_on_a_document_just_created_deletes_it(firestore_client, ref):
    ref.create({"n": 1})

    ref.delete(option=firestore_client.write_option(exists=True))

    assert not ref.get().exists


@pytest.mark.parametrize("source", ["write result", "snapshot"])
def test_a_delete_with_the_update_time_just_written_deletes_it(firestore_client, ref, source):
    written = ref.create({"n": 1}).update_time
    last_update = written if source == "write result" else ref.get().update_time

    ref.delete(option=firestore_client.write_option(last_update_time=last_update))

    assert not ref.get().exists


def test_the_delete_document_rpc_honours_both_preconditions(firestore_client, ref):
    api, name = firestore_client._firestore_api, ref._document_path
    ref.create({"n": 1})
    api.delete_document(request={"name": name, "current_document": {"exists": True}})
    written = ref.create({"n": 2}).update_time
    api.delete_document(request={"name": name, "current_document": {"update_time": written}})

    assert not ref.get().exists


def test_a_bulk_writer_delete_with_update_time_deletes(firestore_client, ref):
    written = ref.create({"n": 1}).update_time
    writer = firestore_client.bulk_writer()
    writer.delete(ref, option=firestore_client.write_option(last_update_time=written))
    writer.close()

    assert not ref.get().exists


def test_a_delete_with_an_older_update_time_is_failed_precondition(firestore_client, ref):
    stale = ref.create({"n": 1}).update_time
    ref.update({"n": 2})

    with pytest.raises(exceptions.FailedPrecondition):
        ref.delete(option=firestore_client.write_option(last_update_time=stale))
    assert ref.get().exists


def test_a_delete_with_an_update_time_in_the_future_is_invalid_argument(firestore_client, ref):
    written = ref.create({"n": 1}).update_time
    future = timestamp_pb2.Timestamp(seconds=int(written.timestamp()) + 3600)

    with pytest.raises(exceptions.InvalidArgument, match="in the future"):
        ref.delete(option=firestore_client.write_option(last_update_time=future))
    assert ref.get().exists


def test_an_update_time_finer_than_a_microsecond_is_invalid_argument(firestore_client, ref):
    written = ref.create({"n": 1}).update_time
    unaligned = timestamp_pb2.Timestamp(seconds=int(written.timestamp()), nanos=1)

    with pytest.raises(exceptions.InvalidArgument, match="microsecond aligned"):
        ref.delete(option=firestore_client.write_option(last_update_time=unaligned))
