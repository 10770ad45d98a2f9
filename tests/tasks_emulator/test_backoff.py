"""The retry schedule and the stop rule, as pure functions (no server)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oncetask_emulators.tasks.backoff import RetryPolicy, retry_delay, schedule, should_retry
from oncetask_emulators.tasks.ratelimit import TokenBucket, derived_burst


def policy(**overrides: float) -> RetryPolicy:
    fields = dict(max_attempts=100, max_retry_duration=0.0, min_backoff=10.0, max_backoff=300.0, max_doublings=3)
    return RetryPolicy(**{**fields, **overrides})


def test_reference_example_doubles_three_times_then_grows_linearly_then_caps():
    assert schedule(policy(), 9) == [10, 20, 40, 80, 160, 240, 300, 300, 300]


def test_zero_doublings_grow_linearly_by_min_backoff():
    assert schedule(policy(max_doublings=0, min_backoff=5, max_backoff=18), 5) == [5, 10, 15, 18, 18]


def test_many_doublings_are_capped_by_max_backoff():
    assert schedule(policy(max_doublings=16, min_backoff=0.1, max_backoff=1.0), 6) == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_first_retry_waits_min_backoff():
    assert retry_delay(policy(), 1) == 10


def test_attempt_limit_alone_stops_when_there_is_no_duration_limit():
    assert should_retry(policy(max_attempts=3), attempts=2, seconds_since_first_attempt=1e9)
    assert not should_retry(policy(max_attempts=3), attempts=3, seconds_since_first_attempt=0)


def test_retrying_goes_on_until_both_attempts_and_duration_are_exhausted():
    p = policy(max_attempts=2, max_retry_duration=60)
    assert should_retry(p, attempts=5, seconds_since_first_attempt=59)  # attempts used up, time left
    assert should_retry(p, attempts=1, seconds_since_first_attempt=120)  # time used up, attempts left
    assert not should_retry(p, attempts=2, seconds_since_first_attempt=60)


def test_unlimited_attempts_never_stop_without_a_duration():
    assert should_retry(policy(max_attempts=-1), attempts=10_000, seconds_since_first_attempt=1e9)


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=10, burst=3, stamp=0.0)
    assert [bucket.try_take(0.0) for _ in range(3)] == [0, 0, 0]
    assert bucket.try_take(0.0) == pytest.approx(0.1)
    assert bucket.try_take(0.1) == 0


def test_derived_burst_is_the_rate_rounded_up_between_1_and_100():
    assert [derived_burst(r) for r in (0.5, 5, 7.2, 500)] == [1, 5, 8, 100]


@given(min_backoff=st.floats(0.1, 100), extra=st.floats(0, 3600), doublings=st.integers(0, 20),
       retries=st.integers(1, 40))
def test_intervals_start_at_min_never_shrink_and_never_pass_max(min_backoff, extra, doublings, retries):
    p = policy(min_backoff=min_backoff, max_backoff=min_backoff + extra, max_doublings=doublings)
    intervals = schedule(p, retries)
    assert intervals[0] == pytest.approx(min_backoff)
    assert all(a <= b for a, b in zip(intervals, intervals[1:]))
    assert all(i <= p.max_backoff for i in intervals)
