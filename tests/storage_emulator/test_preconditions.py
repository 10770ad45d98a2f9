"""Every precondition the client can send, held and broken, through the official client.

A broken `*Match` answers 412 (PreconditionFailed) with production's error body; a `*NotMatch` whose value
matches answers 304 (NotModified), as the request-preconditions documentation says; a refused write changes
nothing.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

import pytest
import requests
from google.api_core import exceptions
from google.cloud import storage

PRECONDITION_MESSAGE = "At least one of the pre-conditions you specified did not hold."


def uploaded(bucket: storage.Bucket, name: str = "obj", data: bytes = b"first") -> storage.Blob:
    blob = bucket.blob(name)
    blob.upload_from_string(data)
    return blob


def content(bucket: storage.Bucket, name: str = "obj") -> bytes:
    return bucket.blob(name).download_as_bytes()


# Uploads ----------------------------------------------------------------------------------------------------------

def test_if_generation_match_zero_creates_an_object_that_does_not_exist(gcs_bucket):
    blob = gcs_bucket.blob("new")
    blob.upload_from_string(b"data", if_generation_match=0)
    assert blob.generation > 0 and content(gcs_bucket, "new") == b"data"


def test_if_generation_match_zero_refuses_to_overwrite_with_412_and_changes_nothing(gcs_bucket):
    original = uploaded(gcs_bucket)
    with pytest.raises(exceptions.PreconditionFailed, match=PRECONDITION_MESSAGE):
        gcs_bucket.blob("obj").upload_from_string(b"second", if_generation_match=0)
    assert content(gcs_bucket) == b"first"
    assert gcs_bucket.get_blob("obj").generation == original.generation


def test_an_upload_with_the_current_generation_replaces_it(gcs_bucket):
    original = uploaded(gcs_bucket)
    blob = gcs_bucket.blob("obj")
    blob.upload_from_string(b"second", if_generation_match=original.generation)
    assert blob.generation > original.generation and content(gcs_bucket) == b"second"


def test_an_upload_with_a_stale_generation_answers_412(gcs_bucket):
    original = uploaded(gcs_bucket)
    uploaded(gcs_bucket, data=b"second")
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("obj").upload_from_string(b"third", if_generation_match=original.generation)
    assert content(gcs_bucket) == b"second"


def test_a_nonzero_if_generation_match_on_a_missing_object_answers_412(gcs_bucket):
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("missing").upload_from_string(b"x", if_generation_match=123)
    assert gcs_bucket.get_blob("missing") is None


def test_if_generation_not_match_allows_an_upload_over_another_generation(gcs_bucket):
    original = uploaded(gcs_bucket)
    gcs_bucket.blob("obj").upload_from_string(b"second", if_generation_not_match=original.generation + 1)
    assert content(gcs_bucket) == b"second"


def test_if_generation_not_match_with_the_current_generation_answers_304(gcs_bucket):
    original = uploaded(gcs_bucket)
    with pytest.raises(exceptions.NotModified):
        gcs_bucket.blob("obj").upload_from_string(b"second", if_generation_not_match=original.generation)
    assert content(gcs_bucket) == b"first"


def test_if_generation_not_match_zero_requires_a_live_object(gcs_bucket):
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("missing").upload_from_string(b"x", if_generation_not_match=0)
    uploaded(gcs_bucket)
    gcs_bucket.blob("obj").upload_from_string(b"second", if_generation_not_match=0)
    assert content(gcs_bucket) == b"second"


def test_if_metageneration_match_on_upload_holds_and_breaks(gcs_bucket):
    uploaded(gcs_bucket)
    gcs_bucket.blob("obj").upload_from_string(b"second", if_metageneration_match=1)
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("obj").upload_from_string(b"third", if_metageneration_match=2)
    assert content(gcs_bucket) == b"second"


def test_if_metageneration_not_match_on_upload_holds_and_answers_304(gcs_bucket):
    uploaded(gcs_bucket)
    gcs_bucket.blob("obj").upload_from_string(b"second", if_metageneration_not_match=5)
    with pytest.raises(exceptions.NotModified):
        gcs_bucket.blob("obj").upload_from_string(b"third", if_metageneration_not_match=1)
    assert content(gcs_bucket) == b"second"


def test_a_resumable_upload_checks_its_precondition_when_it_finishes(gcs_bucket):
    original = uploaded(gcs_bucket)
    data = b"r" * (300 * 1024)
    with pytest.raises(exceptions.PreconditionFailed):
        blob = gcs_bucket.blob("obj", chunk_size=256 * 1024)
        blob.upload_from_file(io.BytesIO(data), if_generation_match=original.generation + 1)
    assert content(gcs_bucket) == b"first"
    blob = gcs_bucket.blob("obj", chunk_size=256 * 1024)
    blob.upload_from_file(io.BytesIO(data), if_generation_match=original.generation)
    assert content(gcs_bucket) == data


def test_of_concurrent_creates_with_if_generation_match_zero_exactly_one_wins(gcs_bucket):
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def create(index: int) -> None:
        blob = gcs_bucket.blob("contended")
        start.wait()
        try:
            blob.upload_from_string(f"writer {index}".encode(), if_generation_match=0, retry=None)
            result = f"won {index}"
        except exceptions.PreconditionFailed:
            result = "412"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [o for o in outcomes if o.startswith("won")]
    assert len(winners) == 1 and outcomes.count("412") == 7
    assert content(gcs_bucket, "contended") == f"writer {winners[0].split()[1]}".encode()


# Reads ------------------------------------------------------------------------------------------------------------

def test_reload_with_generation_preconditions(gcs_bucket):
    blob = uploaded(gcs_bucket)
    blob.reload(if_generation_match=blob.generation, if_metageneration_match=1)
    blob.reload(if_generation_not_match=blob.generation + 1, if_metageneration_not_match=2)
    with pytest.raises(exceptions.PreconditionFailed):
        blob.reload(if_generation_match=blob.generation + 1)
    with pytest.raises(exceptions.PreconditionFailed):
        blob.reload(if_metageneration_match=9)
    with pytest.raises(exceptions.NotModified):
        blob.reload(if_generation_not_match=blob.generation)
    with pytest.raises(exceptions.NotModified):
        blob.reload(if_metageneration_not_match=1)


def test_exists_raises_412_for_a_broken_precondition_as_production_does(gcs_bucket):
    blob = uploaded(gcs_bucket)
    assert blob.exists(if_generation_match=blob.generation)
    with pytest.raises(exceptions.PreconditionFailed):
        blob.exists(if_generation_match=6)


def test_download_with_generation_preconditions(gcs_bucket):
    blob = uploaded(gcs_bucket)
    fresh = gcs_bucket.blob("obj")
    assert fresh.download_as_bytes(if_generation_match=blob.generation, if_metageneration_match=1) == b"first"
    assert fresh.download_as_bytes(if_generation_not_match=1, if_metageneration_not_match=7) == b"first"
    with pytest.raises(exceptions.PreconditionFailed):
        fresh.download_as_bytes(if_generation_match=blob.generation + 1)
    with pytest.raises(exceptions.PreconditionFailed):
        fresh.download_as_bytes(if_metageneration_match=3)
    with pytest.raises(exceptions.NotModified):
        fresh.download_as_bytes(if_generation_not_match=blob.generation)
    with pytest.raises(exceptions.NotModified):
        fresh.download_as_bytes(if_metageneration_not_match=1)


def test_etag_preconditions_on_reload_and_download(gcs_bucket):
    blob = uploaded(gcs_bucket)
    etag, wrong = blob.etag, "CAE="
    fresh = gcs_bucket.blob("obj")
    fresh.reload(if_etag_match=etag)
    fresh.reload(if_etag_not_match=wrong)
    assert fresh.download_as_bytes(if_etag_match=etag) == b"first"
    with pytest.raises(exceptions.PreconditionFailed):
        fresh.reload(if_etag_match=wrong)
    with pytest.raises(exceptions.NotModified):
        fresh.reload(if_etag_not_match=etag)
    with pytest.raises(exceptions.PreconditionFailed):
        fresh.download_as_bytes(if_etag_match=wrong)
    with pytest.raises(exceptions.NotModified):
        fresh.download_as_bytes(if_etag_not_match=etag)


def test_a_download_pinned_to_a_replaced_generation_answers_404(gcs_bucket):
    blob = uploaded(gcs_bucket)
    blob.reload()
    uploaded(gcs_bucket, data=b"second")
    with pytest.raises(exceptions.NotFound):
        blob.download_as_bytes(if_generation_match=blob.generation)


# Metadata writes and deletes ----------------------------------------------------------------------------------------

def test_patch_with_metageneration_preconditions(gcs_bucket):
    blob = uploaded(gcs_bucket)
    blob.metadata = {"step": "1"}
    blob.patch(if_metageneration_match=1)
    assert blob.metageneration == 2
    blob.metadata = {"step": "2"}
    with pytest.raises(exceptions.PreconditionFailed):
        blob.patch(if_metageneration_match=1)
    with pytest.raises(exceptions.NotModified):
        blob.patch(if_metageneration_not_match=2)
    blob.patch(if_metageneration_not_match=1, if_generation_match=blob.generation)
    assert blob.metageneration == 3
    assert gcs_bucket.get_blob("obj").metadata == {"step": "2"}


def test_patch_with_generation_preconditions(gcs_bucket):
    blob = uploaded(gcs_bucket)
    blob.content_language = "en"
    with pytest.raises(exceptions.PreconditionFailed):
        blob.patch(if_generation_match=blob.generation + 1)
    with pytest.raises(exceptions.NotModified):
        blob.patch(if_generation_not_match=blob.generation)
    blob.patch(if_generation_not_match=blob.generation + 1)
    assert gcs_bucket.get_blob("obj").content_language == "en"


def test_update_with_preconditions(gcs_bucket):
    blob = uploaded(gcs_bucket)
    blob.metadata = {"a": "b"}
    with pytest.raises(exceptions.PreconditionFailed):
        blob.update(if_metageneration_match=4)
    blob.update(if_generation_match=blob.generation, if_metageneration_match=1)
    assert (blob.metageneration, gcs_bucket.get_blob("obj").metadata) == (2, {"a": "b"})


def test_delete_with_a_stale_generation_answers_412_and_keeps_the_object(gcs_bucket):
    old = uploaded(gcs_bucket)
    uploaded(gcs_bucket, data=b"second")
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("obj").delete(if_generation_match=old.generation)
    assert content(gcs_bucket) == b"second"


def test_delete_with_every_precondition(gcs_bucket):
    blob = uploaded(gcs_bucket)
    live = gcs_bucket.blob("obj")
    with pytest.raises(exceptions.PreconditionFailed):
        live.delete(if_metageneration_match=2)
    with pytest.raises(exceptions.NotModified):
        live.delete(if_generation_not_match=blob.generation)
    with pytest.raises(exceptions.NotModified):
        live.delete(if_metageneration_not_match=1)
    live.delete(if_generation_match=blob.generation, if_metageneration_match=1,
                if_metageneration_not_match=5, if_generation_not_match=1)
    assert gcs_bucket.get_blob("obj") is None


# Copy, rewrite, compose ----------------------------------------------------------------------------------------------

def test_copy_blob_with_destination_preconditions(gcs_bucket):
    source = uploaded(gcs_bucket, "src", b"payload")
    copied = gcs_bucket.copy_blob(source, gcs_bucket, "dst", if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.copy_blob(source, gcs_bucket, "dst", if_generation_match=0)
    with pytest.raises(exceptions.NotModified):
        gcs_bucket.copy_blob(source, gcs_bucket, "dst", if_generation_not_match=copied.generation)
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.copy_blob(source, gcs_bucket, "dst", if_metageneration_match=2)
    with pytest.raises(exceptions.NotModified):
        gcs_bucket.copy_blob(source, gcs_bucket, "dst", if_metageneration_not_match=1)
    again = gcs_bucket.copy_blob(source, gcs_bucket, "dst", if_generation_match=copied.generation,
                                 if_metageneration_match=1)
    assert again.generation > copied.generation and content(gcs_bucket, "dst") == b"payload"


def test_copy_blob_with_source_preconditions(gcs_bucket):
    source = uploaded(gcs_bucket, "src", b"payload")
    gcs_bucket.copy_blob(source, gcs_bucket, "a", if_source_generation_match=source.generation,
                         if_source_metageneration_match=1)
    gcs_bucket.copy_blob(source, gcs_bucket, "b", if_source_generation_not_match=1,
                         if_source_metageneration_not_match=9)
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.copy_blob(source, gcs_bucket, "c", if_source_generation_match=source.generation + 1)
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.copy_blob(source, gcs_bucket, "c", if_source_metageneration_match=2)
    with pytest.raises(exceptions.NotModified):
        gcs_bucket.copy_blob(source, gcs_bucket, "c", if_source_generation_not_match=source.generation)
    with pytest.raises(exceptions.NotModified):
        gcs_bucket.copy_blob(source, gcs_bucket, "c", if_source_metageneration_not_match=1)
    assert gcs_bucket.get_blob("c") is None


def test_rewrite_with_source_and_destination_preconditions(gcs_bucket):
    source = uploaded(gcs_bucket, "src", b"payload")
    dest = gcs_bucket.blob("dst")
    token, written, size = dest.rewrite(source, if_generation_match=0, if_source_generation_match=source.generation)
    assert (token, written, size) == (None, 7, 7) and dest.generation
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("dst").rewrite(source, if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("other").rewrite(source, if_source_metageneration_match=3)
    with pytest.raises(exceptions.NotModified):
        gcs_bucket.blob("other").rewrite(source, if_source_generation_not_match=source.generation)
    with pytest.raises(exceptions.NotModified):
        gcs_bucket.blob("dst").rewrite(source, if_metageneration_not_match=1)
    assert gcs_bucket.get_blob("other") is None


def test_compose_with_source_and_destination_preconditions(gcs_bucket):
    a, b = uploaded(gcs_bucket, "a", b"AAA"), uploaded(gcs_bucket, "b", b"BBB")
    dest = gcs_bucket.blob("ab")
    dest.compose([a, b], if_source_generation_match=[a.generation, b.generation], if_generation_match=0)
    assert content(gcs_bucket, "ab") == b"AAABBB"
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("ab").compose([a, b], if_generation_match=0)
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("ba").compose([b, a], if_source_generation_match=[b.generation, a.generation + 1])
    with pytest.raises(exceptions.PreconditionFailed):
        gcs_bucket.blob("ab").compose([a, b], if_metageneration_match=5)
    gcs_bucket.blob("ab").compose([b, a], if_generation_match=dest.generation, if_metageneration_match=1)
    assert content(gcs_bucket, "ab") == b"BBBAAA"


# Buckets ------------------------------------------------------------------------------------------------------------

def test_bucket_metageneration_preconditions(make_bucket: Callable[[], storage.Bucket]):
    bucket = make_bucket()
    bucket.reload(if_metageneration_match=1)
    bucket.labels = {"team": "jobs"}
    bucket.patch(if_metageneration_match=1)
    assert bucket.metageneration == 2
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.patch(if_metageneration_match=1)
    with pytest.raises(exceptions.NotModified):
        bucket.reload(if_metageneration_not_match=2)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.delete(if_metageneration_match=1)
    bucket.delete(if_metageneration_match=2)


def test_the_412_body_is_productions(storage_emulator, gcs_bucket):
    blob = uploaded(gcs_bucket)
    response = requests.delete(f"{storage_emulator.host}/storage/v1/b/{gcs_bucket.name}/o/obj",
                               params={"ifGenerationMatch": blob.generation + 1}, timeout=10)
    assert response.status_code == 412
    assert response.json() == {"error": {
        "code": 412, "message": PRECONDITION_MESSAGE,
        "errors": [{"message": PRECONDITION_MESSAGE, "domain": "global", "reason": "conditionNotMet",
                    "locationType": "header", "location": "If-Match"}]}}


def test_a_malformed_precondition_value_answers_400(storage_emulator, gcs_bucket):
    uploaded(gcs_bucket)
    response = requests.get(f"{storage_emulator.host}/storage/v1/b/{gcs_bucket.name}/o/obj",
                            params={"ifGenerationMatch": "twelve"}, timeout=10)
    assert response.status_code == 400 and "ifGenerationMatch" in response.json()["error"]["message"]
