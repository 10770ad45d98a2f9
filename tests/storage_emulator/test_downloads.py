"""Downloads: whole objects with the headers the client reads, byte ranges (206 / 416), generations."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io

import google_crc32c
import pytest
import requests
from google.api_core import exceptions
from google.cloud.storage._media.requests import ChunkedDownload, Download

DATA = bytes(range(256)) * 4  # 1,024 bytes


@pytest.fixture
def stored(gcs_bucket):
    blob = gcs_bucket.blob("data.bin")
    blob.upload_from_string(DATA, content_type="application/x-data")
    return blob


@pytest.fixture
def media_url(storage_emulator, gcs_bucket, stored) -> str:
    return f"{storage_emulator.host}/download/storage/v1/b/{gcs_bucket.name}/o/data.bin?alt=media"


def test_a_download_carries_generation_hashes_and_stored_length(media_url, stored):
    response = requests.get(media_url, timeout=10)
    assert response.status_code == 200 and response.content == DATA
    headers = response.headers
    assert headers["X-Goog-Generation"] == str(stored.generation) and headers["X-Goog-Metageneration"] == "1"
    crc = base64.b64encode(google_crc32c.value(DATA).to_bytes(4, "big")).decode()
    md5 = base64.b64encode(hashlib.md5(DATA).digest()).decode()
    assert headers["X-Goog-Hash"] == f"crc32c={crc},md5={md5}"
    assert headers["X-Goog-Stored-Content-Length"] == str(len(DATA))
    assert headers["X-Goog-Stored-Content-Encoding"] == "identity"
    assert headers["Content-Type"] == "application/x-data" and headers["ETag"] == stored.etag


def test_download_as_bytes_fills_the_blob_from_the_headers(gcs_bucket, stored):
    fresh = gcs_bucket.blob("data.bin")
    assert fresh.download_as_bytes() == DATA
    assert (fresh.generation, fresh.etag, fresh.crc32c, fresh.md5_hash) == (
        stored.generation, stored.etag, stored.crc32c, stored.md5_hash)


@pytest.mark.parametrize(("start", "end"), [(0, 0), (10, 19), (1000, None), (0, 1023), (5, 5000)])
def test_ranged_downloads_return_206_and_exactly_that_slice(gcs_bucket, stored, start, end):
    got = gcs_bucket.blob("data.bin").download_as_bytes(start=start, end=end)
    stop = len(DATA) if end is None else end + 1
    assert got == DATA[start:stop]


def test_a_range_answers_206_with_content_range(media_url):
    response = requests.get(media_url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert response.status_code == 206 and response.content == DATA[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(DATA)}"


def test_a_suffix_range_returns_the_last_bytes(media_url):
    response = requests.get(media_url, headers={"Range": "bytes=-24"}, timeout=10)
    assert response.status_code == 206 and response.content == DATA[-24:]


def test_a_range_past_the_end_answers_416_as_production(media_url):
    download = Download(media_url, start=2048, end=4095)
    with pytest.raises(Exception) as refused:
        download.consume(requests.Session())
    response = refused.value.response
    assert response.status_code == 416 and response.content.startswith(b"Request range not satisfiable")
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_a_range_past_the_end_raises_the_clients_416_error(gcs_bucket, stored):
    with pytest.raises(exceptions.RequestRangeNotSatisfiable):
        gcs_bucket.blob("data.bin").download_as_bytes(start=5000)


def test_an_unparsable_range_is_ignored_and_the_whole_object_sent(media_url):
    response = requests.get(media_url, headers={"Range": "pages=1-2"}, timeout=10)
    assert response.status_code == 200 and response.content == DATA


def test_a_chunked_download_reads_the_object_in_slices(media_url):
    stream = io.BytesIO()
    download = ChunkedDownload(media_url, 100, stream)
    transport = requests.Session()
    while not download.finished:
        assert download.consume_next_chunk(transport).status_code == 206
    assert stream.getvalue() == DATA and download.total_bytes == len(DATA)


def test_a_chunked_download_of_an_empty_object_finishes(storage_emulator, gcs_bucket):
    gcs_bucket.blob("empty").upload_from_string(b"")
    url = f"{storage_emulator.host}/download/storage/v1/b/{gcs_bucket.name}/o/empty?alt=media"
    stream = io.BytesIO()
    download = ChunkedDownload(url, 100, stream)
    download.consume_next_chunk(requests.Session())  # 416 with bytes */0: the library's empty-object case
    assert download.finished and stream.getvalue() == b""


def test_an_empty_object_downloads_whole(gcs_bucket):
    gcs_bucket.blob("empty").upload_from_string(b"")
    assert gcs_bucket.blob("empty").download_as_bytes() == b""


def test_a_missing_object_download_answers_productions_plain_404(storage_emulator, gcs_bucket):
    response = requests.get(f"{storage_emulator.host}/download/storage/v1/b/{gcs_bucket.name}/o/nope?alt=media",
                            timeout=10)
    assert response.status_code == 404
    assert response.content == f"No such object: {gcs_bucket.name}/nope".encode()
    with pytest.raises(exceptions.NotFound):
        gcs_bucket.blob("nope").download_as_bytes()


def test_download_of_a_specific_generation(gcs_bucket):
    gcs_bucket.versioning_enabled = True
    gcs_bucket.patch()
    old = gcs_bucket.blob("v")
    old.upload_from_string(b"old")
    new = gcs_bucket.blob("v")
    new.upload_from_string(b"new")
    assert gcs_bucket.blob("v", generation=old.generation).download_as_bytes() == b"old"
    assert gcs_bucket.blob("v", generation=new.generation).download_as_bytes() == b"new"
    with pytest.raises(exceptions.NotFound):
        gcs_bucket.blob("v", generation=new.generation + 1).download_as_bytes()


def test_a_reloaded_blob_downloads_through_its_media_link(gcs_bucket, stored):
    fresh = gcs_bucket.get_blob("data.bin")
    assert fresh.media_link.endswith(f"?generation={stored.generation}&alt=media")
    assert fresh.download_as_bytes() == DATA


def test_a_gzip_encoded_object_downloads_expanded_or_raw(gcs_bucket):
    plain = b"DEADBEEF" * 1000
    zipped = gzip.compress(plain)
    blob = gcs_bucket.blob("zipped.gz")
    blob.content_encoding = "gzip"
    blob.upload_from_string(zipped)
    assert gcs_bucket.blob("zipped.gz").download_as_bytes() == plain
    assert gcs_bucket.blob("zipped.gz").download_as_bytes(raw_download=True) == zipped


def test_a_gzip_encoded_object_is_expanded_for_a_client_that_does_not_accept_gzip(storage_emulator, gcs_bucket):
    plain = b"hello " * 100
    blob = gcs_bucket.blob("zipped.txt")
    blob.content_encoding = "gzip"
    blob.upload_from_string(gzip.compress(plain), content_type="text/plain")
    response = requests.get(f"{storage_emulator.host}/download/storage/v1/b/{gcs_bucket.name}/o/zipped.txt",
                            params={"alt": "media"}, headers={"Accept-Encoding": "identity"}, timeout=10)
    assert response.content == plain and "Content-Encoding" not in response.headers
    assert response.headers["X-Goog-Stored-Content-Encoding"] == "gzip"
