"""Buckets through the client: create, get, list, patch, delete, and production's refusals."""

from __future__ import annotations

import uuid

import pytest
import requests
from google.api_core import exceptions


def unique(prefix: str = "b") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_create_returns_the_metadata_the_client_reads(gcs_client):
    bucket = gcs_client.create_bucket(unique(), location="us-central1")
    assert bucket.location == "US-CENTRAL1" and bucket.location_type == "region"
    assert bucket.storage_class == "STANDARD" and bucket.metageneration == 1 and bucket.etag == "CAE="
    assert bucket.time_created is not None and bucket.project_number
    assert bucket.versioning_enabled is False
    assert bucket.iam_configuration.public_access_prevention == "inherited"


def test_the_default_location_is_us_multi_region(gcs_client):
    bucket = gcs_client.create_bucket(unique())
    assert (bucket.location, bucket.location_type) == ("US", "multi-region")


def test_get_bucket_and_lookup(gcs_client):
    name = unique()
    gcs_client.create_bucket(name)
    assert gcs_client.get_bucket(name).name == name
    assert gcs_client.lookup_bucket(unique("absent")) is None
    with pytest.raises(exceptions.NotFound, match="The specified bucket does not exist."):
        gcs_client.get_bucket(unique("absent"))


def test_creating_a_bucket_you_own_again_answers_409(gcs_client):
    name = unique()
    gcs_client.create_bucket(name)
    with pytest.raises(exceptions.Conflict, match="you already own it"):
        gcs_client.create_bucket(name)


def test_a_bucket_name_taken_by_another_project_answers_409(storage_emulator):
    name = unique()
    storage_emulator.client("project-one").create_bucket(name)
    with pytest.raises(exceptions.Conflict, match="bucket namespace is shared"):
        storage_emulator.client("project-two").create_bucket(name)


@pytest.mark.parametrize("name", ["Upper", "ab", "a" * 64, "-leading", "trailing-", "has space", "goog-bucket",
                                  "my-google-bucket", "192.168.5.4", "under_score_ok_but_bang!"])
def test_invalid_bucket_names_answer_400(storage_emulator, name):
    # Raw HTTP: the client refuses some of these names itself before sending them.
    response = requests.post(f"{storage_emulator.host}/storage/v1/b", params={"project": "p"},
                             json={"name": name}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(f"Invalid bucket name: '{name}'")


def test_list_buckets_lists_the_projects_own_in_name_order_and_pages(storage_emulator):
    client = storage_emulator.client(unique("project"))
    names = sorted(unique("list") for _ in range(5))
    for name in names:
        client.create_bucket(name)
    assert [b.name for b in client.list_buckets()] == names
    assert [b.name for b in client.list_buckets(page_size=2)] == names
    assert [b.name for b in client.list_buckets(prefix=names[0])] == [names[0]]


def test_patch_labels_and_versioning_grow_the_metageneration(gcs_bucket):
    gcs_bucket.labels = {"team": "jobs", "env": "dev"}
    gcs_bucket.versioning_enabled = True
    gcs_bucket.patch()
    assert gcs_bucket.metageneration == 2 and gcs_bucket.etag != "CAE="
    fresh = gcs_bucket.client.get_bucket(gcs_bucket.name)
    assert fresh.labels == {"team": "jobs", "env": "dev"} and fresh.versioning_enabled
    fresh.labels = {"team": "jobs"}  # the client sends env: null, which removes it
    fresh.patch()
    assert gcs_bucket.client.get_bucket(gcs_bucket.name).labels == {"team": "jobs"}


def test_deleting_a_bucket_with_objects_answers_409_and_keeps_them(gcs_bucket):
    gcs_bucket.blob("keep").upload_from_string(b"x")
    with pytest.raises(exceptions.Conflict, match="The bucket you tried to delete is not empty."):
        gcs_bucket.delete()
    assert gcs_bucket.blob("keep").exists()


def test_deleting_a_bucket_with_only_noncurrent_versions_answers_409(gcs_bucket):
    gcs_bucket.versioning_enabled = True
    gcs_bucket.patch()
    blob = gcs_bucket.blob("old")
    blob.upload_from_string(b"x")
    gcs_bucket.blob("old").delete()
    with pytest.raises(exceptions.Conflict):
        gcs_bucket.delete()


def test_delete_empty_and_force_delete(gcs_client, make_bucket):
    empty = make_bucket()
    empty.delete()
    assert gcs_client.lookup_bucket(empty.name) is None
    full = make_bucket()
    for i in range(3):
        full.blob(f"o{i}").upload_from_string(b"x")
    full.delete(force=True)
    assert gcs_client.lookup_bucket(full.name) is None
    with pytest.raises(exceptions.NotFound):
        full.delete()


def test_the_404_body_is_productions(storage_emulator):
    response = requests.get(f"{storage_emulator.host}/storage/v1/b/{unique('absent')}", timeout=10)
    message = "The specified bucket does not exist."
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 404, "message": message,
                                         "errors": [{"message": message, "domain": "global", "reason": "notFound"}]}}


def test_creating_without_a_project_answers_400(storage_emulator):
    response = requests.post(f"{storage_emulator.host}/storage/v1/b", json={"name": unique()}, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["errors"][0]["reason"] == "required"
