"""The change feed's routing, without a server: a commit reaches exactly the subscriptions whose targets it
concerns (documents, collections, collection groups), in commit order, and a subscription that falls too far
behind is marked, not waited for."""

from __future__ import annotations

import pytest
from google.cloud.firestore_v1.types import document

from oncetask_emulators.firestore.listen.feed import ChangeFeed, FellBehind

ROOT = "projects/p/databases/(default)/documents"
Doc = document.Document.pb()


def commit(feed: ChangeFeed, micros: int, *paths: str) -> None:
    feed.committed(micros, {f"{ROOT}/{p}": Doc(name=f"{ROOT}/{p}") for p in paths})


def received(subscription) -> list[int]:
    return [entry.micros for entry in subscription.take(None)]


@pytest.fixture
def feed() -> ChangeFeed:
    return ChangeFeed(capacity=3)


def test_a_commit_reaches_the_listeners_of_its_documents_collections_and_groups_only(feed):
    interests = {
        "doc a": ("document", f"{ROOT}/jobs/a"),
        "doc b": ("document", f"{ROOT}/jobs/b"),
        "jobs": ("collection", f"{ROOT}/jobs"),
        "other collection": ("collection", f"{ROOT}/other"),
        "group jobs": ("group", ROOT, "jobs"),
        "group jobs under x": ("group", f"{ROOT}/x/1", "jobs"),
        "every collection": ("group", ROOT, ""),
    }
    subscriptions = {label: feed.subscribe(lambda: None) for label in interests}
    for label, interest in interests.items():
        feed.watch(subscriptions[label], [interest])

    commit(feed, 1, "jobs/a")
    commit(feed, 2, "x/1/jobs/z")

    got = {label: received(s) for label, s in subscriptions.items()}
    assert got == {"doc a": [1], "doc b": [], "jobs": [1], "other collection": [], "group jobs": [1, 2],
                   "group jobs under x": [2], "every collection": [1, 2]}


def test_an_interest_held_twice_lasts_until_both_are_released(feed):
    subscription = feed.subscribe(lambda: None)
    interest = ("document", f"{ROOT}/jobs/a")
    feed.watch(subscription, [interest])
    feed.watch(subscription, [interest])

    feed.unwatch(subscription, [interest])
    commit(feed, 1, "jobs/a")
    feed.unwatch(subscription, [interest])
    commit(feed, 2, "jobs/a")

    assert received(subscription) == [1]


def test_a_commit_wakes_only_the_subscriptions_it_concerns(feed):
    woken = []
    mine = feed.subscribe(lambda: woken.append("mine"))
    feed.subscribe(lambda: woken.append("idle"))
    feed.watch(mine, [("collection", f"{ROOT}/jobs")])

    commit(feed, 1, "jobs/a", "jobs/b")

    assert woken == ["mine"]


def test_a_subscription_too_far_behind_is_marked_and_writers_go_on(feed):
    subscription = feed.subscribe(lambda: None)
    feed.watch(subscription, [("collection", f"{ROOT}/jobs")])

    for micros in range(1, 6):  # capacity is 3
        commit(feed, micros, "jobs/a")

    with pytest.raises(FellBehind):
        subscription.take(None)


def test_take_stops_at_the_read_time_asked_for(feed):
    subscription = feed.subscribe(lambda: None)
    feed.watch(subscription, [("collection", f"{ROOT}/jobs")])
    for micros in (10, 20, 30):
        commit(feed, micros, "jobs/a")

    assert [e.micros for e in subscription.take(until=20)] == [10, 20]
    assert received(subscription) == [30]


def test_tokens_name_a_time_of_this_feeds_history_only(feed):
    token = feed.token(123)

    assert feed.token_time(token) == 123
    assert ChangeFeed().token_time(token) is None  # another run of the emulator, or another database
    assert feed.token_time(b"garbage") is None
    feed.wiped()
    assert feed.token_time(token) is None
