"""The Listen wire protocol, request by request, through the official client's GAPIC `listen` method: the order
of messages, resume tokens and read times, target IDs, target removal and errors.

What `on_snapshot` makes of it is tested in test_listen.py."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud.firestore_v1 import FieldFilter

from fixtures.firestore import firestore_client_for
from listening import RawListen, docs_target, drop_listens, kind, name_of, query_target, summary


@pytest.fixture
def streams():
    """Raw streams to close at the end of the test."""
    opened: list[RawListen] = []
    yield opened
    for stream in opened:
        stream.close()


@pytest.fixture
def open_stream(firestore_client, streams):
    def open_(client=None) -> RawListen:
        stream = RawListen(client or firestore_client)
        streams.append(stream)
        return stream

    return open_


def test_the_initial_snapshot_is_add_the_documents_current_then_a_global_no_change(firestore_client, open_stream):
    jobs = firestore_client.collection("jobs")
    written = [jobs.document(i).set({"n": 1}).update_time for i in ("a", "b")]
    stream = open_stream()

    stream.add(7, **query_target(firestore_client, jobs))
    got = stream.until_global()

    assert summary(got) == [("ADD", [7]), ("document_change", "a", [7], []), ("document_change", "b", [7], []),
                            ("CURRENT", [7]), ("NO_CHANGE", [])]
    current, snapshot = got[3].target_change, got[4].target_change
    assert current.resume_token and snapshot.resume_token
    assert snapshot.read_time >= max(written)


def test_each_commit_is_its_changes_then_a_global_no_change_at_the_commit_time(firestore_client, open_stream):
    jobs = firestore_client.collection("jobs")
    stream = open_stream()
    stream.add(1, **query_target(firestore_client, jobs))
    stream.until_global()

    batch = firestore_client.batch()
    batch.set(jobs.document("a"), {"n": 1})
    batch.set(jobs.document("b"), {"n": 2})
    results = batch.commit()
    got = stream.until_global()

    assert summary(got) == [("document_change", "a", [1], []), ("document_change", "b", [1], []), ("NO_CHANGE", [])]
    assert got[-1].target_change.read_time == results[0].update_time


def test_a_document_leaves_a_query_by_a_change_a_delete_or_a_remove(firestore_client, open_stream):
    jobs = firestore_client.collection("jobs")
    jobs.document("a").set({"state": "running", "n": 5})
    jobs.document("b").set({"state": "running", "n": 9})
    stream = open_stream()
    stream.add(1, **query_target(firestore_client, jobs.where(filter=FieldFilter("state", "==", "running"))))
    stream.until_global()
    stream.add(2, **query_target(firestore_client, jobs.order_by("n").limit(1)))
    stream.until_global()

    jobs.document("a").update({"state": "completed"})  # still in target 2's window
    assert summary(stream.until_global()) == [("document_change", "a", [2], [1]), ("NO_CHANGE", [])]
    jobs.document("b").delete()
    assert summary(stream.until_global()) == [("document_delete", "b", [1]), ("NO_CHANGE", [])]
    jobs.document("c").set({"state": "queued", "n": 1})  # pushes a, unchanged, out of target 2's window
    assert summary(stream.until_global()) == [
        ("document_change", "c", [2], []), ("document_remove", "a", [2]), ("NO_CHANGE", [])]


def test_a_document_in_two_targets_is_one_message_naming_both(firestore_client, open_stream):
    jobs = firestore_client.collection("jobs")
    stream = open_stream()
    stream.add(1, **query_target(firestore_client, jobs))
    stream.until_global()
    stream.add(2, **docs_target(firestore_client, "jobs/a", "jobs/b"))
    stream.until_global()

    jobs.document("a").set({"n": 1})

    assert summary(stream.until_global()) == [("document_change", "a", [1, 2], []), ("NO_CHANGE", [])]


def test_a_write_that_changes_nothing_sends_nothing(firestore_client, open_stream):
    ref = firestore_client.collection("jobs").document("a")
    ref.set({"n": 1})
    stream = open_stream()
    stream.add(1, **docs_target(firestore_client, "jobs/a"))
    stream.until_global()

    ref.set({"n": 1})

    assert stream.quiet() == []


def test_a_resume_token_sends_only_what_changed_since_it_and_the_count(firestore_client, open_stream):
    jobs = firestore_client.collection("jobs")
    for i in ("a", "b", "d"):
        jobs.document(i).set({"n": 0})
    first = open_stream()
    first.add(1, **query_target(firestore_client, jobs))
    token = first.until_global()[-1].target_change.resume_token
    first.close()

    jobs.document("a").set({"n": 1})
    jobs.document("b").delete()
    jobs.document("c").set({"n": 0})
    again = open_stream()
    again.add(1, **query_target(firestore_client, jobs), resume_token=token)
    got = again.until_global()

    assert summary(got) == [("ADD", [1]), ("document_change", "a", [1], []), ("document_change", "c", [1], []),
                            ("document_delete", "b", [1]), ("filter", 1, 3), ("CURRENT", [1]), ("NO_CHANGE", [])]


def test_a_read_time_resume_sends_what_changed_after_that_time(firestore_client, open_stream):
    ref = firestore_client.collection("jobs").document("a")
    then = ref.set({"n": 0}).update_time
    firestore_client.collection("jobs").document("b").set({"n": 0})
    ref.set({"n": 1})
    stream = open_stream()

    stream.add(1, **docs_target(firestore_client, "jobs/a", "jobs/b"), read_time=then)
    got = stream.until_global()

    assert summary(got) == [("ADD", [1]), ("document_change", "a", [1], []), ("document_change", "b", [1], []),
                            ("filter", 1, 2), ("CURRENT", [1]), ("NO_CHANGE", [])]
    assert got[1].document_change.document.fields["n"].integer_value == 1


@pytest.mark.parametrize("token", [b"not a token of ours", b"\x01" + bytes(16)])
def test_an_unknown_resume_token_resets_the_target_and_sends_everything(firestore_client, open_stream, token):
    jobs = firestore_client.collection("jobs")
    jobs.document("a").set({"n": 0})
    stream = open_stream()

    stream.add(1, **query_target(firestore_client, jobs), resume_token=token)

    assert summary(stream.until_global()) == [
        ("ADD", [1]), ("RESET", [1]), ("document_change", "a", [1], []), ("CURRENT", [1]), ("NO_CHANGE", [])]


def test_a_resume_token_older_than_the_kept_versions_resets_the_target(start_firestore_emulator, streams):
    emulator = start_firestore_emulator("--version-retention", "0.2")
    client = firestore_client_for(emulator, "old-tokens")
    ref = client.collection("jobs").document("a")
    ref.set({"n": 0})
    first = RawListen(client)
    streams.append(first)
    first.add(1, **docs_target(client, "jobs/a"))
    token = first.until_global()[-1].target_change.resume_token
    first.close()
    time.sleep(0.5)  # past the retention: the state at the token's time can no longer be read
    ref.set({"n": 1})

    again = RawListen(client)
    streams.append(again)
    again.add(1, **docs_target(client, "jobs/a"), resume_token=token)

    assert summary(again.until_global()) == [
        ("ADD", [1]), ("RESET", [1]), ("document_change", "a", [1], []), ("CURRENT", [1]), ("NO_CHANGE", [])]


def test_a_resume_token_of_another_database_resets_the_target(firestore_emulator, firestore_client, open_stream):
    other = firestore_client_for(firestore_emulator, firestore_client.project + "-other")
    theirs = open_stream(other)
    theirs.add(1, **query_target(other, other.collection("jobs")))
    token = theirs.until_global()[-1].target_change.resume_token
    stream = open_stream()

    stream.add(1, **query_target(firestore_client, firestore_client.collection("jobs")), resume_token=token)

    assert [kind(r) for r in stream.until_global()] == ["ADD", "RESET", "CURRENT", "NO_CHANGE"]


def test_a_read_time_in_the_future_removes_the_target_with_invalid_argument(firestore_client, open_stream):
    stream = open_stream()
    future = {"seconds": int(time.time()) + 3600}

    stream.add(1, **docs_target(firestore_client, "jobs/a"), read_time=future)
    (removed,) = stream.quiet(1.0)

    assert summary([removed]) == [("REMOVE", [1])]
    assert removed.target_change.cause.code == 3 and "future" in removed.target_change.cause.message


def test_remove_target_answers_remove_and_stops_its_changes(firestore_client, open_stream):
    jobs = firestore_client.collection("jobs")
    stream = open_stream()
    stream.add(1, **query_target(firestore_client, jobs))
    stream.add(2, **docs_target(firestore_client, "jobs/a"))
    stream.until_global()
    stream.until_global()

    stream.send(remove_target=1)
    assert summary([stream.next()]) == [("REMOVE", [1])]
    jobs.document("a").set({"n": 1})

    assert summary(stream.until_global()) == [("document_change", "a", [2], []), ("NO_CHANGE", [])]


def test_an_invalid_query_is_removed_with_its_cause(firestore_client, open_stream):
    stream = open_stream()
    bad = {"from_": [{"collection_id": "jobs"}],
           "where": {"field_filter": {"field": {"field_path": "a..b"}, "op": "EQUAL", "value": {"integer_value": 1}}}}

    stream.add(3, query={"parent": name_of(firestore_client, "")[:-1], "structured_query": bad})
    (removed,) = stream.quiet(1.0)

    assert summary([removed]) == [("REMOVE", [3])]
    assert removed.target_change.cause.code == 3 and "a..b" in removed.target_change.cause.message


def test_a_document_outside_the_database_is_removed_with_its_cause(firestore_client, open_stream):
    stream = open_stream()

    stream.add(4, documents={"documents": ["projects/elsewhere/databases/(default)/documents/jobs/a"]})
    (removed,) = stream.quiet(1.0)

    assert summary([removed]) == [("REMOVE", [4])]
    assert removed.target_change.cause.code == 3


def test_a_duplicate_target_id_fails_the_stream_with_invalid_argument(firestore_client, open_stream):
    stream = open_stream()
    stream.add(1, **docs_target(firestore_client, "jobs/a"))
    stream.until_global()

    stream.add(1, **docs_target(firestore_client, "jobs/b"))

    assert stream.next() is None
    assert isinstance(stream.error, exceptions.InvalidArgument) and "already in use" in str(stream.error)


def test_target_id_zero_has_the_server_assign_ids_and_then_refuses_chosen_ones(firestore_client, open_stream):
    stream = open_stream()
    stream.add(0, **docs_target(firestore_client, "jobs/a"))
    first = stream.until_global()
    stream.add(0, **docs_target(firestore_client, "jobs/b"))
    second = stream.until_global()

    stream.add(9, **docs_target(firestore_client, "jobs/c"))
    (refused,) = stream.quiet(1.0)

    assert (summary(first)[0], summary(second)[0]) == (("ADD", [1]), ("ADD", [2]))
    assert summary([refused]) == [("REMOVE", [9])] and refused.target_change.cause.code == 3


def test_a_once_target_is_removed_as_soon_as_it_is_current(firestore_client, open_stream):
    firestore_client.collection("jobs").document("a").set({"n": 0})
    stream = open_stream()

    stream.add(1, **docs_target(firestore_client, "jobs/a"), once=True)
    got = stream.until_global()
    after = stream.quiet(1.0)

    assert [kind(r) for r in got] == ["ADD", "document_change", "CURRENT", "NO_CHANGE"]
    assert summary(after) == [("REMOVE", [1])]


def test_a_stream_must_keep_to_one_database(firestore_client, open_stream):
    stream = open_stream()
    stream.add(1, **docs_target(firestore_client, "jobs/a"))
    stream.until_global()

    stream.send(database="projects/another/databases/(default)", add_target={"target_id": 2, **docs_target(
        firestore_client, "jobs/a")})

    assert stream.next() is None
    assert isinstance(stream.error, exceptions.InvalidArgument)


def test_a_half_closed_stream_answers_the_requests_sent_before_then_ends_with_ok(firestore_client, open_stream):
    # The Node.js client unsubscribes by half-closing and waits for the server to end the call: a stream left
    # open keeps its process from exiting.
    firestore_client.collection("jobs").document("a").set({"n": 0})
    stream = open_stream()
    stream.add(1, **docs_target(firestore_client, "jobs/a"))
    stream.half_close()

    got = stream.until_global()

    assert [kind(r) for r in got] == ["ADD", "document_change", "CURRENT", "NO_CHANGE"]
    assert stream.next() is None and stream.error is None


def test_a_dropped_stream_ends_unavailable_and_its_token_resumes_it(firestore_emulator, firestore_client, open_stream):
    if firestore_emulator.http is None:
        pytest.skip("dropping streams needs our emulator's HTTP side")
    jobs = firestore_client.collection("jobs")
    stream = open_stream()
    stream.add(1, **query_target(firestore_client, jobs))
    token = stream.until_global()[-1].target_change.resume_token

    assert drop_listens(firestore_emulator, firestore_client.project) == 1
    assert stream.next() is None
    assert isinstance(stream.error, exceptions.ServiceUnavailable)

    jobs.document("a").set({"n": 1})
    again = open_stream()
    again.add(1, **query_target(firestore_client, jobs), resume_token=token)
    assert summary(again.until_global()) == [
        ("ADD", [1]), ("document_change", "a", [1], []), ("filter", 1, 1), ("CURRENT", [1]), ("NO_CHANGE", [])]


def test_past_the_stream_limit_listen_answers_resource_exhausted_and_other_calls_still_work(start_firestore_emulator,
                                                                                             streams):
    emulator = start_firestore_emulator("--workers", "8")  # at most 4 Listen streams
    client = firestore_client_for(emulator, "crowded")
    for target_id in range(1, 5):
        stream = RawListen(client)
        streams.append(stream)
        stream.add(target_id, **docs_target(client, "jobs/a"))
        stream.until_global()

    refused = RawListen(client)
    streams.append(refused)
    refused.add(1, **docs_target(client, "jobs/a"))

    assert refused.next() is None
    assert isinstance(refused.error, exceptions.ResourceExhausted)
    client.collection("jobs").document("a").set({"n": 1})
    assert client.collection("jobs").document("a").get().to_dict() == {"n": 1}
