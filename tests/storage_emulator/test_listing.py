"""objects.list through the client: prefix, delimiter and prefixes, paging, offsets, matchGlob, versions.

The hierarchy and the expectations are those of the client library's system tests against production.
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions

HIERARCHY = ["file01.txt", "parent/", "parent/file11.txt", "parent/child/file21.txt", "parent/child/file22.txt",
             "parent/child/grand/file31.txt", "parent/child/other/file32.txt"]


@pytest.fixture
def hierarchy(gcs_bucket):
    for name in HIERARCHY:
        gcs_bucket.blob(name).upload_from_string(name.encode())
    return gcs_bucket


def names_and_prefixes(bucket, **kwargs):
    iterator = bucket.list_blobs(**kwargs)
    page = next(iterator.pages)
    return [b.name for b in page], iterator.prefixes, iterator.next_page_token


def test_listing_everything_is_sorted_by_name(hierarchy):
    assert [b.name for b in hierarchy.list_blobs()] == sorted(HIERARCHY)


def test_a_prefix_limits_the_listing(hierarchy):
    assert [b.name for b in hierarchy.list_blobs(prefix="parent/child/")] == [
        "parent/child/file21.txt", "parent/child/file22.txt", "parent/child/grand/file31.txt",
        "parent/child/other/file32.txt"]


def test_delimiter_at_the_root(hierarchy):
    assert names_and_prefixes(hierarchy, delimiter="/") == (["file01.txt"], {"parent/"}, None)


def test_delimiter_at_the_first_level(hierarchy):
    assert names_and_prefixes(hierarchy, delimiter="/", prefix="parent/") == (
        ["parent/", "parent/file11.txt"], {"parent/child/"}, None)


def test_delimiter_at_the_second_level(hierarchy):
    assert names_and_prefixes(hierarchy, delimiter="/", prefix="parent/child/") == (
        ["parent/child/file21.txt", "parent/child/file22.txt"], {"parent/child/grand/", "parent/child/other/"},
        None)


def test_include_trailing_delimiter_lists_the_directory_object_too(hierarchy):
    assert names_and_prefixes(hierarchy, delimiter="/", include_trailing_delimiter=True) == (
        ["file01.txt", "parent/"], {"parent/"}, None)


def test_paging_with_max_results_visits_every_object_once(gcs_bucket):
    names = [f"obj-{i:03d}" for i in range(25)]
    for name in names:
        gcs_bucket.blob(name).upload_from_string(b"x")
    iterator = gcs_bucket.client.list_blobs(gcs_bucket, page_size=7)
    pages = [[b.name for b in page] for page in iterator.pages]
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [n for p in pages for n in p] == names


def test_a_full_last_page_has_no_next_page_token(gcs_bucket):
    for i in range(4):
        gcs_bucket.blob(f"o{i}").upload_from_string(b"x")
    iterator = gcs_bucket.list_blobs(max_results=4)
    assert len(list(next(iterator.pages))) == 4 and iterator.next_page_token is None


def test_paging_counts_prefixes_and_items_together(hierarchy):
    iterator = hierarchy.client.list_blobs(hierarchy, delimiter="/", prefix="parent/", page_size=1)
    pages = []
    for page in iterator.pages:
        pages.append(([b.name for b in page], sorted(page.prefixes)))
    assert pages == [(["parent/"], []), ([], ["parent/child/"]), (["parent/file11.txt"], [])]  # in name order


def test_listing_is_stable_while_objects_are_written(gcs_bucket):
    for name in ("a", "c", "e"):
        gcs_bucket.blob(name).upload_from_string(b"x")
    iterator = gcs_bucket.client.list_blobs(gcs_bucket, page_size=2)
    pages = iterator.pages
    first = [b.name for b in next(pages)]
    gcs_bucket.blob("b").upload_from_string(b"x")  # before the cursor: not seen
    gcs_bucket.blob("d").upload_from_string(b"x")  # after it: seen
    rest = [b.name for page in pages for b in page]
    assert first == ["a", "c"] and rest == ["d", "e"]


def test_start_and_end_offsets(gcs_bucket):
    for name in ("CloudLogo1", "CloudLogo2", "CloudLogo3", "CloudLogo4"):
        gcs_bucket.blob(name).upload_from_string(b"x")
    listed = [b.name for b in gcs_bucket.list_blobs(start_offset="CloudLogo2", end_offset="CloudLogo4")]
    assert listed == ["CloudLogo2", "CloudLogo3"]


@pytest.mark.parametrize(("glob", "expected"), [
    ("foo*bar", ["foobar"]),
    ("foo**bar", ["foo/bar", "foo/foobar", "foobar"]),
    ("**/foobar", ["foo/foobar", "foobar"]),
    ("*/ba[rz]", ["foo/bar", "foo/baz"]),
    ("*/ba[!a-y]", ["foo/baz"]),
    ("**/{foobar,baz}", ["foo/baz", "foo/foobar", "foobar"]),
    ("foo/{foo*,*baz}", ["foo/baz", "foo/foobar"]),
])
def test_match_glob_as_in_productions_system_tests(gcs_bucket, glob, expected):
    for name in ("foo/bar", "foo/baz", "foo/foobar", "foobar"):
        gcs_bucket.blob(name).upload_from_string(b"helloworld")
    assert [b.name for b in gcs_bucket.list_blobs(match_glob=glob)] == expected


def test_versions_lists_every_generation_oldest_first_and_pages_through_them(gcs_bucket):
    gcs_bucket.versioning_enabled = True
    gcs_bucket.patch()
    generations = []
    for i in range(3):
        blob = gcs_bucket.blob("v")
        blob.upload_from_string(str(i).encode())
        generations.append(blob.generation)
    gcs_bucket.blob("w").upload_from_string(b"w")
    iterator = gcs_bucket.client.list_blobs(gcs_bucket, versions=True, page_size=2)
    listed = [(b.name, b.generation) for page in iterator.pages for b in page]
    assert listed[:3] == [("v", g) for g in generations] and listed[3][0] == "w" and len(listed) == 4
    assert [b.name for b in gcs_bucket.list_blobs()] == ["v", "w"]  # versions=false: live ones only


def test_listing_a_missing_bucket_answers_404(gcs_client):
    with pytest.raises(exceptions.NotFound):
        list(gcs_client.list_blobs("no-such-bucket-anywhere"))


def test_a_forged_page_token_answers_400(gcs_bucket):
    with pytest.raises(exceptions.BadRequest):
        list(gcs_bucket.list_blobs(page_token="not-a-token"))


def test_fields_selects_part_of_the_listing(gcs_bucket):
    gcs_bucket.blob("a").upload_from_string(b"x")
    blobs = list(gcs_bucket.list_blobs(fields="items(name),nextPageToken"))
    assert [b.name for b in blobs] == ["a"] and blobs[0].size is None
