"""Uploads: media, multipart, and the resumable protocol (308 with Range, resent chunks, status queries, the end).

The protocol-level tests drive the client library's own upload classes (`google.cloud.storage._media.requests`,
which `Blob.upload_from_file` uses underneath) against the emulator, as the library's system tests drive
production.
"""

from __future__ import annotations

import io
import os
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from google.api_core import exceptions
from google.cloud.storage._media import UPLOAD_CHUNK_SIZE
from google.cloud.storage._media.requests import MultipartUpload, ResumableUpload, SimpleUpload
from google.cloud.storage.exceptions import InvalidResponse

CHUNK = UPLOAD_CHUNK_SIZE  # 256 KiB


@pytest.fixture
def transport() -> requests.Session:
    return requests.Session()


@pytest.fixture
def upload_base(storage_emulator, gcs_bucket) -> str:
    return f"{storage_emulator.host}/upload/storage/v1/b/{gcs_bucket.name}/o?uploadType="


def test_upload_from_file_in_chunks_stores_every_byte(gcs_bucket):
    data = os.urandom(5 * CHUNK + 123)
    blob = gcs_bucket.blob("big.bin", chunk_size=CHUNK)
    blob.upload_from_file(io.BytesIO(data), content_type="application/x-test")
    assert blob.size == len(data) and blob.content_type == "application/x-test"
    assert gcs_bucket.blob("big.bin").download_as_bytes() == data


def test_a_large_upload_without_a_chunk_size_goes_resumable_and_round_trips(storage_emulator, gcs_bucket):
    data = os.urandom(9 * 1024 * 1024)  # over the client's 8 MiB multipart limit
    before = storage_emulator.stats()["calls"].get("objects.insert(resumable)", 0)
    blob = gcs_bucket.blob("large.bin")
    blob.upload_from_string(data)
    assert storage_emulator.stats()["calls"]["objects.insert(resumable)"] == before + 1
    assert gcs_bucket.blob("large.bin").download_as_bytes() == data


def test_resumable_upload_answers_308_with_the_kept_range_after_each_chunk(transport, upload_base, gcs_bucket):
    data = os.urandom(3 * CHUNK + 10)
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    response = upload.initiate(transport, io.BytesIO(data), {"name": "chunks", "metadata": {"k": "v"}},
                               "application/octet-stream")
    assert response.status_code == 200 and response.content == b""
    upload_id = parse_qs(urlsplit(upload.resumable_url).query)["upload_id"][0]
    assert response.headers["x-guploader-uploadid"] == upload_id
    for sent in (1, 2, 3):
        response = upload.transmit_next_chunk(transport)
        assert response.status_code == 308 and response.content == b""
        assert response.headers["range"] == f"bytes=0-{sent * CHUNK - 1}"
        assert upload.bytes_uploaded == sent * CHUNK
    response = upload.transmit_next_chunk(transport)
    assert response.status_code == 200 and upload.finished
    resource = response.json()
    assert (resource["size"], resource["metageneration"], resource["metadata"]) == (str(len(data)), "1", {"k": "v"})
    assert gcs_bucket.blob("chunks").download_as_bytes() == data


def test_resumable_upload_of_unknown_size_ends_with_a_short_chunk(transport, upload_base, gcs_bucket):
    data = os.urandom(2 * CHUNK + 155)
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    upload.initiate(transport, io.BytesIO(data), {"name": "unknown"}, "text/plain", stream_final=False)
    assert upload.total_bytes is None
    first = upload.transmit_next_chunk(transport)
    assert first.request.headers["content-range"] == f"bytes 0-{CHUNK - 1}/*" and first.status_code == 308
    while not upload.finished:
        last = upload.transmit_next_chunk(transport)
    assert last.json()["contentType"] == "text/plain"
    assert gcs_bucket.blob("unknown").download_as_bytes() == data


def test_resumable_upload_that_ends_exactly_on_a_chunk_finishes_with_an_empty_request(transport, upload_base,
                                                                                       gcs_bucket):
    data = b"ab" * CHUNK
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    upload.initiate(transport, io.BytesIO(data), {"name": "exact"}, "application/octet-stream",
                    stream_final=False)
    upload.transmit_next_chunk(transport)
    upload.transmit_next_chunk(transport)
    final = upload.transmit_next_chunk(transport)
    assert final.request.headers["content-range"] == f"bytes */{2 * CHUNK}"
    assert final.status_code == 200 and gcs_bucket.blob("exact").download_as_bytes() == data


def test_recover_asks_the_session_where_it_stands_and_resumes_there(transport, upload_base, gcs_bucket):
    data = b"123" * CHUNK
    stream = io.BytesIO(data)
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    upload.initiate(transport, stream, {"name": "recovered"}, "application/octet-stream")
    upload.transmit_next_chunk(transport)
    # As if the client lost track: wrong position, wrong count, marked invalid.
    upload._invalid, upload._bytes_uploaded = True, 0  # noqa: SLF001
    stream.seek(0)
    response = upload.recover(transport)
    assert response.status_code == 308 and upload.bytes_uploaded == CHUNK and stream.tell() == CHUNK
    while not upload.finished:
        upload.transmit_next_chunk(transport)
    assert gcs_bucket.blob("recovered").download_as_bytes() == data


def test_a_resent_chunk_is_not_stored_twice(transport, upload_base, gcs_bucket):
    data = os.urandom(2 * CHUNK + 7)
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    stream = io.BytesIO(data)
    upload.initiate(transport, stream, {"name": "resent"}, "application/octet-stream")
    upload.transmit_next_chunk(transport)
    url = upload.resumable_url
    resend = transport.put(url, data=data[:CHUNK], headers={"Content-Range": f"bytes 0-{CHUNK - 1}/{len(data)}"})
    assert resend.status_code == 308 and resend.headers["Range"] == f"bytes=0-{CHUNK - 1}"
    overlap = transport.put(url, data=data[CHUNK // 2:], headers={
        "Content-Range": f"bytes {CHUNK // 2}-{len(data) - 1}/{len(data)}"})
    assert overlap.status_code == 200 and overlap.json()["size"] == str(len(data))
    assert gcs_bucket.blob("resent").download_as_bytes() == data


def test_a_chunk_below_256_kib_answers_productions_400_and_the_session_stays_refused(transport, upload_base):
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    stream = io.BytesIO(os.urandom(CHUNK * 2))
    upload.initiate(transport, stream, {"name": "short"}, "application/octet-stream")
    upload._chunk_size = 1024  # noqa: SLF001 - a non-final chunk below the minimum, as the library's test sends
    expected = (b"Invalid request.  The number of bytes uploaded is required to be equal or greater than 262144, "
                b"except for the final request (it's recommended to be the exact multiple of 262144).  The "
                b"received request contained 1024 bytes, which does not meet this requirement.")
    with pytest.raises(InvalidResponse) as refused:
        upload.transmit_next_chunk(transport)
    assert refused.value.response.status_code == 400 and refused.value.response.content == expected
    upload._chunk_size, upload._invalid = CHUNK, False  # noqa: SLF001
    stream.seek(0)
    with pytest.raises(InvalidResponse) as again:
        upload.transmit_next_chunk(transport)
    assert again.value.response.content == expected


def test_a_chunk_past_the_kept_bytes_is_refused(transport, upload_base):
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    upload.initiate(transport, io.BytesIO(b"x" * (2 * CHUNK)), {"name": "gap"}, "application/octet-stream")
    response = transport.put(upload.resumable_url, data=b"y" * CHUNK,
                             headers={"Content-Range": f"bytes {CHUNK}-{2 * CHUNK - 1}/{2 * CHUNK}"})
    assert response.status_code == 400 and b"send from byte 0" in response.content


def test_a_finished_session_answers_its_object_again(transport, upload_base, gcs_bucket):
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    upload.initiate(transport, io.BytesIO(b"tiny"), {"name": "done"}, "text/plain")
    finished = upload.transmit_next_chunk(transport).json()
    again = transport.put(upload.resumable_url, headers={"Content-Range": "bytes */*"})
    assert again.status_code == 200 and again.json()["generation"] == finished["generation"]


def test_a_cancelled_session_answers_499_then_404(transport, upload_base):
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    upload.initiate(transport, io.BytesIO(b"x" * CHUNK * 2), {"name": "cancelled"}, "application/octet-stream")
    assert transport.delete(upload.resumable_url).status_code == 499
    assert transport.put(upload.resumable_url, headers={"Content-Range": "bytes */*"}).status_code == 404


def test_a_status_query_before_any_bytes_answers_308_without_range(transport, upload_base):
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    upload.initiate(transport, io.BytesIO(b"x" * 10), {"name": "fresh"}, "application/octet-stream")
    response = transport.put(upload.resumable_url, headers={"Content-Range": "bytes */*"})
    assert response.status_code == 308 and "range" not in response.headers


def test_a_final_x_goog_hash_that_does_not_match_answers_400(transport, upload_base, gcs_bucket):
    upload = ResumableUpload(upload_base + "resumable", CHUNK)
    upload.initiate(transport, io.BytesIO(b"data"), {"name": "hashed"}, "text/plain")
    response = transport.put(upload.resumable_url, data=b"data",
                             headers={"Content-Range": "bytes 0-3/4", "X-Goog-Hash": "crc32c=AAAAAA=="})
    assert response.status_code == 400 and "CRC32C" in response.json()["error"]["message"]
    assert gcs_bucket.get_blob("hashed") is None


@pytest.mark.parametrize("checksum", ["md5", "crc32c", None])
def test_multipart_upload_through_the_library_with_each_checksum(transport, upload_base, gcs_bucket, checksum):
    upload = MultipartUpload(upload_base + "multipart", checksum=checksum)
    data = b"multipart contents\x00\x01"
    response = upload.transmit(transport, data, {"name": f"mp-{checksum}", "metadata": {"c": "y"}}, "image/x-icon")
    resource = response.json()
    assert response.status_code == 200
    assert (resource["contentType"], resource["metadata"], resource["size"]) == ("image/x-icon", {"c": "y"},
                                                                                   str(len(data)))
    assert gcs_bucket.blob(f"mp-{checksum}").download_as_bytes() == data


def test_simple_media_upload_through_the_library(transport, storage_emulator, gcs_bucket):
    url = f"{storage_emulator.host}/upload/storage/v1/b/{gcs_bucket.name}/o?uploadType=media&name=some%20file"
    response = SimpleUpload(url).transmit(transport, b"simple", "text/csv")
    assert response.status_code == 200 and response.json()["contentType"] == "text/csv"
    assert gcs_bucket.blob("some file").download_as_bytes() == b"simple"


def test_an_upload_without_an_upload_type_answers_400(storage_emulator, gcs_bucket):
    response = requests.post(f"{storage_emulator.host}/upload/storage/v1/b/{gcs_bucket.name}/o", data=b"x",
                             timeout=10)
    assert response.status_code == 400
    assert "uploadType" in response.json()["error"]["message"]


def test_a_malformed_multipart_body_answers_400(storage_emulator, gcs_bucket):
    response = requests.post(f"{storage_emulator.host}/upload/storage/v1/b/{gcs_bucket.name}/o",
                             params={"uploadType": "multipart"}, data=b"--B\r\nnot a part",
                             headers={"Content-Type": "multipart/related; boundary=B"}, timeout=10)
    assert response.status_code == 400


def test_an_upload_to_a_missing_bucket_answers_404(gcs_client):
    with pytest.raises(exceptions.NotFound, match="The specified bucket does not exist"):
        gcs_client.bucket("no-such-bucket-here").blob("x").upload_from_string(b"x")
