"""Bad input gets production's 4xx with a message, never a 500, and the emulator keeps serving."""

from __future__ import annotations

import socket
import uuid

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def bucket_name(storage_emulator) -> str:
    name = f"bad-{uuid.uuid4().hex[:12]}"
    storage_emulator.client().create_bucket(name).blob("obj").upload_from_string(b"data")
    return name


def call(host: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, host + path, timeout=10, **kwargs)


CASES = [
    # (method, path, kwargs, status, words in the message)
    ("POST", "/storage/v1/b?project=p", {"data": b"{not json"}, 400, "Parse Error"),
    ("POST", "/storage/v1/b?project=p", {"data": b"[1, 2]"}, 400, "JSON object"),
    ("POST", "/storage/v1/b?project=p", {"json": {"name": "ok-name", "storageClass": "GOLD"}}, 400,
     "storage class"),
    ("POST", "/storage/v1/b?project=p", {"json": {"name": "ok-name", "labels": ["a"]}}, 400, "labels"),
    ("POST", "/storage/v1/b?project=p", {"json": {"name": "ok-name", "versioning": "yes"}}, 400, "versioning"),
    ("GET", "/storage/v1/b/{b}/o/obj?generation=abc", {}, 400, "generation"),
    ("GET", "/storage/v1/b/{b}/o/obj?generation=-4", {}, 400, "generation"),
    ("GET", "/storage/v1/b/{b}/o/obj?alt=xml", {}, 400, "alt"),
    ("GET", "/storage/v1/b/{b}/o?maxResults=many", {}, 400, "maxResults"),
    ("GET", "/storage/v1/b/{b}/o?versions=maybe", {}, 400, "versions"),
    ("GET", "/storage/v1/b/{b}/o?matchGlob=%5Bunclosed", {}, 400, "matchGlob"),
    ("GET", "/storage/v1/b/{b}/o?fields=items(name", {}, 400, "field selection"),
    ("GET", "/storage/v1/b/{b}/o/%FF%FE", {}, 400, "UTF-8"),
    ("PATCH", "/storage/v1/b/{b}/o/obj", {"json": {"metadata": "not a map"}}, 400, "metadata"),
    ("PATCH", "/storage/v1/b/{b}/o/obj", {"json": {"metadata": {"k": {"nested": 1}}}}, 400, "metadata.k"),
    ("PATCH", "/storage/v1/b/{b}/o/obj", {"json": {"contentType": 7}}, 400, "contentType"),
    ("PATCH", "/storage/v1/b/{b}/o/obj", {"json": {"temporaryHold": "yes"}}, 400, "temporaryHold"),
    ("PATCH", "/storage/v1/b/{b}/o/obj", {"data": b"\xff\xfe"}, 400, "Parse Error"),
    ("POST", "/storage/v1/b/{b}/o/dst/compose", {"json": {}}, 400, "sourceObjects"),
    ("POST", "/storage/v1/b/{b}/o/dst/compose", {"json": {"sourceObjects": [{"nom": "x"}]}}, 400, "name"),
    ("POST", "/storage/v1/b/{b}/o/dst/compose", {"json": {"sourceObjects": [{"name": "obj", "generation": "x"}]}},
     400, "generation"),
    ("POST", "/upload/storage/v1/b/{b}/o?uploadType=sideways", {"data": b"x"}, 400, "uploadType"),
    ("POST", "/upload/storage/v1/b/{b}/o?uploadType=media", {"data": b"x"}, 400, "name"),
    ("POST", "/upload/storage/v1/b/{b}/o?uploadType=multipart", {"data": b"x",
                                                                 "headers": {"Content-Type": "text/plain"}},
     400, "multipart/related"),
    ("POST", "/upload/storage/v1/b/{b}/o?uploadType=resumable", {"json": {"name": "r"},
                                                                 "headers": {"X-Upload-Content-Length": "-1"}},
     400, "X-Upload-Content-Length"),
    ("POST", "/upload/storage/v1/b/{b}/o?uploadType=resumable", {"json": {"name": "r", "metadata": [1]}},
     400, "metadata"),
    ("PUT", "/upload/storage/v1/b/{b}/o?upload_id=forged", {"data": b"x"}, 404, "upload"),
    ("GET", "/storage/v1/b/{b}/o/missing", {}, 404, "No such object"),
    ("GET", "/storage/v2/anything", {}, 404, "Not Found"),
    ("DELETE", "/storage/v1/b", {}, 404, "Not Found"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "words"), CASES,
                         ids=[f"{c[0]} {c[1]} {c[4]}" for c in CASES])
def test_bad_requests_answer_4xx_with_a_message(storage_emulator, bucket_name, method, path, kwargs, status, words):
    response = call(storage_emulator.host, method, path.replace("{b}", bucket_name), **kwargs)
    assert response.status_code == status
    assert words in response.text


def test_a_bad_chunk_content_range_answers_400_and_the_session_lives_on(storage_emulator, bucket_name):
    opened = call(storage_emulator.host, "POST", f"/upload/storage/v1/b/{bucket_name}/o?uploadType=resumable",
                  json={"name": "rr"})
    session = opened.headers["Location"]
    for content_range in ("bytes 0-9/5", "bytes 5-2/*", "pages 0-3/4", "bytes 0-3/4"):  # last: 4 bytes != 3 sent
        response = requests.put(session, data=b"abc", headers={"Content-Range": content_range}, timeout=10)
        assert response.status_code == 400, content_range
    done = requests.put(session, data=b"abc", headers={"Content-Range": "bytes 0-2/3"}, timeout=10)
    assert done.status_code == 200 and done.json()["size"] == "3"


def test_a_garbled_http_request_gets_an_answer_and_the_server_keeps_serving(storage_emulator):
    host, port = storage_emulator.host.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"POST /storage/v1/b?project=p HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"\x00\x01 garbage\r\n\r\n")
        conn.recv(100)
    assert requests.get(f"{storage_emulator.host}/storage/v1/b?project=p", timeout=10).status_code == 200


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
       route=st.sampled_from(["/storage/v1/b", "/storage/v1/b/{b}", "/storage/v1/b/{b}/o", "/storage/v1/b/{b}/o/obj",
                              "/storage/v1/b/{b}/o/obj/compose", "/storage/v1/b/{b}/o/obj/copyTo/b/{b}/o/x",
                              "/storage/v1/b/{b}/o/obj/rewriteTo/b/{b}/o/x", "/upload/storage/v1/b/{b}/o",
                              "/download/storage/v1/b/{b}/o/obj"]),
       params=st.dictionaries(st.sampled_from(
           ["project", "generation", "ifGenerationMatch", "ifMetagenerationNotMatch", "ifSourceGenerationMatch",
            "alt", "prefix", "delimiter", "maxResults", "pageToken", "versions", "uploadType", "name", "fields",
            "upload_id", "matchGlob", "startOffset", "sourceGeneration"]), _text, max_size=4),
       body=st.one_of(st.binary(max_size=64), st.dictionaries(_text, st.one_of(_text, st.integers(), st.none(),
                                                                                st.lists(_text, max_size=2)),
                                                               max_size=3).map(lambda d: repr(d).encode())),
       headers=st.dictionaries(st.sampled_from(["Range", "Content-Range", "X-Goog-Hash", "If-Match",
                                                "Content-Type", "X-Upload-Content-Length"]),
                               st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
                               .map(str.strip),  # requests itself refuses a value with leading blanks
                               max_size=3))
def test_no_request_ends_in_a_500(storage_emulator, bucket_name, method, route, params, body, headers):
    response = call(storage_emulator.host, method, route.replace("{b}", bucket_name), params=params, data=body,
                    headers=headers)
    assert response.status_code < 500, response.text
