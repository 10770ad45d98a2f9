"""The retry schedule, as pure functions of a queue's retry config (seconds, unscaled).

From the RetryConfig docs: the interval starts at min_backoff, doubles max_doublings times, then grows linearly
by that last doubled step (min_backoff * 2**max_doublings), and is capped at max_backoff. With min 10, max 300 and
3 doublings: 10, 20, 40, 80, 160, 240, 300, 300, ...
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int  # attempts including the first; -1 is unlimited
    max_retry_duration: float  # seconds since the first attempt; 0 is no limit
    min_backoff: float
    max_backoff: float
    max_doublings: int


def retry_delay(policy: RetryPolicy, failed_attempts: int) -> float:
    """Seconds to wait before the next attempt, after `failed_attempts` (>= 1) attempts have failed."""
    retry = max(1, failed_attempts)  # the first retry waits min_backoff
    doublings = min(retry - 1, policy.max_doublings)
    delay = policy.min_backoff * 2**doublings
    linear_steps = retry - 1 - doublings
    if linear_steps > 0:
        delay += linear_steps * policy.min_backoff * 2**policy.max_doublings
    return min(delay, policy.max_backoff)


def should_retry(policy: RetryPolicy, attempts: int, seconds_since_first_attempt: float) -> bool:
    """Retrying stops only when both limits are exhausted: the attempt count and the retry duration.

    A zero max_retry_duration sets no time limit of its own, so then the attempt count alone decides; with
    max_attempts = -1 the task is retried for ever (production stops at the task retention limit).
    """
    attempts_left = policy.max_attempts == -1 or attempts < policy.max_attempts
    time_left = policy.max_retry_duration > 0 and seconds_since_first_attempt < policy.max_retry_duration
    return attempts_left or time_left


def schedule(policy: RetryPolicy, retries: int) -> list[float]:
    """The first `retries` retry intervals: handy for documentation and tests."""
    return [retry_delay(policy, n) for n in range(1, retries + 1)]
