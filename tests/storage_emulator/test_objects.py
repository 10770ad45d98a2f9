"""Objects through the official client: generations, metadata, checksums, versions, copy, rewrite and compose."""

from __future__ import annotations

import base64
import hashlib

import google_crc32c
import pytest
import requests
from google.api_core import exceptions
from google.cloud import storage


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def test_every_overwrite_gets_a_strictly_greater_generation_and_metageneration_1(gcs_bucket):
    generations = []
    for i in range(20):
        blob = gcs_bucket.blob("same")
        blob.upload_from_string(f"v{i}".encode())
        assert blob.metageneration == 1
        generations.append(blob.generation)
    assert generations == sorted(set(generations))
    # A generation is a time in microseconds, as production's are.
    assert 1_500_000_000_000_000 < generations[0] < 10_000_000_000_000_000


def test_generations_grow_across_objects_too(gcs_bucket):
    first, second = gcs_bucket.blob("a"), gcs_bucket.blob("b")
    first.upload_from_string(b"1")
    second.upload_from_string(b"2")
    assert second.generation > first.generation


def test_upload_returns_the_resource_the_client_reads(gcs_bucket):
    data = b"hello world"
    blob = gcs_bucket.blob("dir/hello.txt")
    blob.metadata = {"origin": "test"}
    blob.cache_control = "no-cache"
    blob.upload_from_string(data, content_type="text/plain")
    assert blob.size == len(data)
    assert blob.md5_hash == md5_b64(data) and blob.crc32c == crc32c_b64(data)
    assert blob.content_type == "text/plain" and blob.storage_class == "STANDARD"
    assert blob.metadata == {"origin": "test"} and blob.cache_control == "no-cache"
    assert blob.time_created is not None and blob.updated == blob.time_created
    assert blob.id == f"{gcs_bucket.name}/dir/hello.txt/{blob.generation}"
    assert blob.etag and blob.media_link.startswith("http://127.0.0.1:")


def test_an_object_without_custom_metadata_has_no_metadata_key(gcs_bucket):
    blob = gcs_bucket.blob("plain")
    blob.upload_from_string(b"x")
    assert "metadata" not in blob._properties  # noqa: SLF001 - production leaves the key out


def test_a_media_upload_without_a_content_type_is_octet_stream(storage_emulator, gcs_bucket):
    response = requests.post(f"{storage_emulator.host}/upload/storage/v1/b/{gcs_bucket.name}/o",
                             params={"uploadType": "media", "name": "bytes"}, data=b"\x00\x01", timeout=10)
    assert response.status_code == 200
    assert gcs_bucket.get_blob("bytes").content_type == "application/octet-stream"


def test_patch_grows_the_metageneration_keeps_the_generation_and_changes_the_etag(gcs_bucket):
    blob = gcs_bucket.blob("obj")
    blob.upload_from_string(b"data")
    generation, etag = blob.generation, blob.etag
    blob.metadata = {"a": "1", "b": "2"}
    blob.patch()
    assert (blob.generation, blob.metageneration) == (generation, 2) and blob.etag != etag
    blob.metadata = {"a": "1", "b": None}  # None removes a key, as in production
    blob.patch()
    assert blob.metageneration == 3 and gcs_bucket.get_blob("obj").metadata == {"a": "1"}
    assert blob.updated >= blob.time_created


def test_update_replaces_all_writable_metadata(gcs_bucket):
    blob = gcs_bucket.blob("obj")
    blob.content_language = "en"
    blob.metadata = {"keep": "no"}
    blob.upload_from_string(b"data", content_type="text/plain")
    fresh = gcs_bucket.get_blob("obj")
    fresh.metadata = {"new": "yes"}
    fresh.update()
    again = gcs_bucket.get_blob("obj")
    assert again.metadata == {"new": "yes"} and again.content_type == "text/plain"
    assert again.metageneration == 2


def test_a_patch_with_a_bad_field_value_answers_400(gcs_bucket):
    blob = gcs_bucket.blob("obj")
    blob.upload_from_string(b"data")
    blob._patch_property("customTime", "not a time")  # noqa: SLF001 - what a careless caller could send
    with pytest.raises(exceptions.BadRequest):
        blob.patch()


def test_delete_then_get_answers_404_with_productions_message(gcs_bucket):
    blob = gcs_bucket.blob("gone")
    blob.upload_from_string(b"x")
    blob.delete()
    with pytest.raises(exceptions.NotFound, match=f"No such object: {gcs_bucket.name}/gone"):
        gcs_bucket.blob("gone").reload()
    with pytest.raises(exceptions.NotFound):
        gcs_bucket.blob("gone").delete()
    assert gcs_bucket.get_blob("gone") is None and not gcs_bucket.blob("gone").exists()


def test_without_versioning_an_overwrite_removes_the_old_generation(gcs_bucket):
    old = gcs_bucket.blob("obj")
    old.upload_from_string(b"one")
    gcs_bucket.blob("obj").upload_from_string(b"two")
    with pytest.raises(exceptions.NotFound):
        gcs_bucket.blob("obj", generation=old.generation).download_as_bytes()
    assert [b.name for b in gcs_bucket.list_blobs(versions=True)] == ["obj"]


def test_with_versioning_old_generations_stay_readable_and_listed(gcs_bucket):
    gcs_bucket.versioning_enabled = True
    gcs_bucket.patch()
    first = gcs_bucket.blob("obj")
    first.upload_from_string(b"one")
    second = gcs_bucket.blob("obj")
    second.upload_from_string(b"two")
    assert gcs_bucket.blob("obj", generation=first.generation).download_as_bytes() == b"one"
    assert gcs_bucket.blob("obj").download_as_bytes() == b"two"
    versions = list(gcs_bucket.list_blobs(versions=True))
    assert [v.generation for v in versions] == [first.generation, second.generation]
    assert versions[0].time_deleted is not None and versions[1].time_deleted is None
    assert [b.generation for b in gcs_bucket.list_blobs()] == [second.generation]
    # Deleting the live version leaves it noncurrent; deleting a named generation removes it for good.
    gcs_bucket.blob("obj").delete()
    assert gcs_bucket.get_blob("obj") is None
    assert len(list(gcs_bucket.list_blobs(versions=True))) == 2
    gcs_bucket.blob("obj", generation=first.generation).delete()
    assert [v.generation for v in gcs_bucket.list_blobs(versions=True)] == [second.generation]
    gcs_bucket.delete(force=True)  # the client deletes every version first


def test_a_blob_bound_to_its_generation_targets_that_generation(gcs_bucket):
    old = gcs_bucket.blob("obj")
    old.upload_from_string(b"one")
    gcs_bucket.blob("obj").upload_from_string(b"two")
    with pytest.raises(exceptions.NotFound):
        old.delete()  # `old` carries generation=...: that generation is gone, so is the delete's target
    assert gcs_bucket.blob("obj").download_as_bytes() == b"two"


def test_multipart_upload_with_a_wrong_checksum_answers_400_and_stores_nothing(storage_emulator, gcs_bucket):
    body = (b'--B\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n'
            b'{"name": "bad", "crc32c": "AAAAAA=="}\r\n--B\r\ncontent-type: text/plain\r\n\r\nhello\r\n--B--')
    response = requests.post(f"{storage_emulator.host}/upload/storage/v1/b/{gcs_bucket.name}/o",
                             params={"uploadType": "multipart"}, data=body,
                             headers={"Content-Type": 'multipart/related; boundary="B"'}, timeout=10)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "CRC32C" in message and "AAAAAA==" in message and crc32c_b64(b"hello") in message
    assert gcs_bucket.get_blob("bad") is None


def test_the_client_verifies_checksums_on_download_and_they_match(gcs_bucket):
    data = bytes(range(256)) * 100
    gcs_bucket.blob("obj").upload_from_string(data)
    for checksum in ("md5", "crc32c"):
        assert gcs_bucket.blob("obj").download_as_bytes(checksum=checksum) == data


def test_copy_blob_copies_bytes_and_metadata_into_a_new_generation(make_bucket):
    source_bucket, target_bucket = make_bucket(), make_bucket()
    source = source_bucket.blob("src")
    source.metadata = {"k": "v"}
    source.upload_from_string(b"payload", content_type="text/plain")
    copied = source_bucket.copy_blob(source, target_bucket, "copied")
    assert copied.download_as_bytes() == b"payload"
    assert (copied.content_type, copied.metadata, copied.md5_hash) == ("text/plain", {"k": "v"}, source.md5_hash)
    assert copied.generation > source.generation and copied.metageneration == 1


def test_copy_of_a_missing_source_answers_404(gcs_bucket):
    with pytest.raises(exceptions.NotFound):
        gcs_bucket.copy_blob(gcs_bucket.blob("nothing"), gcs_bucket, "copy")


def test_copy_of_a_named_source_generation(gcs_bucket):
    gcs_bucket.versioning_enabled = True
    gcs_bucket.patch()
    old = gcs_bucket.blob("src")
    old.upload_from_string(b"old")
    gcs_bucket.blob("src").upload_from_string(b"new")
    gcs_bucket.copy_blob(old, gcs_bucket, "restored", source_generation=old.generation)
    assert gcs_bucket.blob("restored").download_as_bytes() == b"old"


def test_rewrite_finishes_in_one_call_and_overrides_metadata(gcs_bucket):
    source = gcs_bucket.blob("src")
    source.upload_from_string(b"x" * 5000, content_type="text/plain")
    dest = gcs_bucket.blob("dst")
    dest.content_type = "application/json"
    token, written, total = dest.rewrite(source)
    assert (token, written, total) == (None, 5000, 5000)
    assert dest.content_type == "application/json" and dest.download_as_bytes() == b"x" * 5000


def test_compose_concatenates_and_reports_components_and_crc32c_without_md5(gcs_bucket):
    parts = []
    for name, data in (("a", b"AAA\n"), ("b", b"BBB\n"), ("c", b"CCC\n")):
        blob = gcs_bucket.blob(name)
        blob.upload_from_string(data)
        parts.append(blob)
    dest = gcs_bucket.blob("abc")
    dest.compose(parts)
    assert dest.content_type is None  # compose gives no content type unless asked, as in production
    assert dest.component_count == 3 and dest.md5_hash is None
    assert dest.crc32c == crc32c_b64(b"AAA\nBBB\nCCC\n")
    assert dest.download_as_bytes() == b"AAA\nBBB\nCCC\n"
    twice = gcs_bucket.blob("twice")
    twice.compose([dest, dest])
    assert twice.component_count == 6


def test_compose_of_a_missing_source_answers_404(gcs_bucket):
    gcs_bucket.blob("a").upload_from_string(b"a")
    with pytest.raises(exceptions.NotFound):
        gcs_bucket.blob("dest").compose([gcs_bucket.blob("a"), gcs_bucket.blob("missing")])


def test_compose_of_more_than_32_sources_answers_400(gcs_bucket):
    source = gcs_bucket.blob("s")
    source.upload_from_string(b"s")
    with pytest.raises(exceptions.BadRequest):
        gcs_bucket.blob("dest").compose([source] * 33)


def test_object_names_with_unicode_slashes_and_spaces_round_trip(gcs_bucket):
    for name in ("Caf\u00e9", "Cafe\u0301", "a/b/c d+e?f#g%h", "  spaced  "):
        gcs_bucket.blob(name).upload_from_string(name.encode())
        assert gcs_bucket.blob(name).download_as_bytes() == name.encode()
        assert gcs_bucket.get_blob(name).name == name


def test_bad_object_names_answer_400(gcs_bucket):
    for name in ("a\nb", "x" * 1025, ".well-known/acme-challenge/token", ".."):
        with pytest.raises(exceptions.BadRequest):
            gcs_bucket.blob(name).upload_from_string(b"x")


def test_client_ops_are_counted_in_stats(storage_emulator, gcs_bucket):
    before = storage_emulator.stats()["calls"].get("objects.insert(multipart)", 0)
    gcs_bucket.blob("counted").upload_from_string(b"x")
    assert storage_emulator.stats()["calls"]["objects.insert(multipart)"] == before + 1


def test_a_bucket_client_is_a_real_google_client(gcs_client):
    assert isinstance(gcs_client, storage.Client)
