"""The system-throttling model and Retry-After parsing, as pure functions (no server)."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oncetask_emulators.tasks.throttle import FLOOR, SystemThrottle, retry_after_seconds


def test_a_503_halves_the_rate_once_per_generation_of_dispatches():
    throttle = SystemThrottle(ceiling=100)
    started = throttle.generation
    assert throttle.observe(503, started)
    assert throttle.rate == 50
    # Answers to dispatches started before the cut are the same overload: no second cut.
    assert not throttle.observe(503, started)
    assert not throttle.observe(429, started)
    assert throttle.rate == 50
    assert throttle.observe(429, throttle.generation)  # a dispatch started after the cut: cut again
    assert throttle.rate == 25


def test_the_rate_never_falls_below_the_floor():
    throttle = SystemThrottle(ceiling=100)
    for _ in range(20):
        throttle.observe(503, throttle.generation)
    assert throttle.rate == FLOOR
    slow = SystemThrottle(ceiling=0.5)
    slow.observe(503, slow.generation)
    assert slow.rate == 0.5  # a queue slower than the floor is not cut at all


@pytest.mark.parametrize("status", [400, 404, 409, 424, 500, 502, 504])
def test_other_failures_leave_the_rate_alone(status):
    throttle = SystemThrottle(ceiling=100)
    for _ in range(50):
        assert not throttle.observe(status, throttle.generation)
    assert throttle.rate == 100


def test_each_success_raises_the_rate_by_a_tenth_up_to_the_ceiling():
    throttle = SystemThrottle(ceiling=10)
    throttle.observe(503, 0)
    assert throttle.rate == 5
    throttle.observe(200, 0)
    assert throttle.rate == pytest.approx(5.5)
    for _ in range(10):
        throttle.observe(204, 0)
    assert throttle.rate == 10 and not throttle.throttled


def test_a_high_share_of_calls_without_any_response_throttles():
    throttle = SystemThrottle(ceiling=100)
    for _ in range(9):
        assert not throttle.observe(None, 0)  # too few samples yet
    assert throttle.observe(None, 0)
    assert throttle.rate == 50


def test_calls_without_response_among_successes_do_not_throttle():
    throttle = SystemThrottle(ceiling=100)
    for i in range(40):
        throttle.observe(None if i % 3 == 0 else 200, throttle.generation)
    assert throttle.rate == 100


def test_a_new_ceiling_is_followed_at_once_unless_throttled():
    free = SystemThrottle(ceiling=100)
    free.set_ceiling(300)
    assert free.rate == 300
    cut = SystemThrottle(ceiling=100)
    cut.observe(503, 0)
    cut.set_ceiling(300)
    assert (cut.rate, cut.ceiling) == (50, 300)  # recovers towards the new ceiling
    cut.set_ceiling(20)
    assert cut.rate == 20


@given(ceiling=st.floats(0.1, 500), outcomes=st.lists(st.sampled_from([None, 200, 409, 429, 500, 503])))
def test_the_rate_stays_between_the_floor_and_the_ceiling(ceiling, outcomes):
    throttle = SystemThrottle(ceiling=ceiling)
    for status in outcomes:
        throttle.observe(status, throttle.generation)
        assert min(FLOOR, ceiling) <= throttle.rate <= ceiling


@given(st.text(max_size=40))
def test_any_retry_after_header_is_a_delay_or_none_never_an_error(value):
    seconds = retry_after_seconds(value, 1_700_000_000.0)
    assert seconds is None or 0 <= seconds <= 30 * 86400


def test_retry_after_in_seconds_or_as_an_http_date():
    now = 1_700_000_000.0
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds(email.utils.formatdate(now + 90, usegmt=True), now) == 90
    assert retry_after_seconds(email.utils.formatdate(now - 90, usegmt=True), now) == 0  # already passed
    assert retry_after_seconds("Fri, 31 Dec 1999 23:59:59 -0000", now) == 0
    for bad in (None, "", "soon", "-5", "1.5", "\u00b2", "Mon, 99 Foo 99999 99:99:99 GMT"):
        assert retry_after_seconds(bad, now) is None
    assert retry_after_seconds("999999999", now) == 30 * 86400  # never past what a schedule_time may be
    assert retry_after_seconds("Fri, 31 Dec 9999 23:59:59 +2359", now) == 30 * 86400
