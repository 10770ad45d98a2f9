"""Retry policy (pure) and the bounded in-attempt retry for transient Google API calls.

Two levels of retry: inside one attempt, a transient Firestore/Storage/Tasks call is retried a few times with
jittered backoff (tenacity); a stage failure that is still transient ends the attempt with a non-2xx answer, and
Cloud Tasks retries the whole attempt with the queue's backoff, until the job's own attempts are spent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import retry, retry_if_exception, stop_after_attempt, stop_after_delay, wait_random_exponential

from .errors import OncetaskError, is_retryable

T = TypeVar("T")


UNLIMITED = -1  # as in Cloud Tasks' retry config


def attempts_spent(used: int, max_attempts: int) -> bool:
    """Whether a job that has run `used` attempts (since it was last submitted or manually retried) may run no more.

    Only the job's own executions count (lease acquisitions). Cloud Tasks' retry count is no measure of them: it
    also counts deliveries that never ran the job (answered busy while another worker held it, or refused before
    running), so trusting it failed jobs with attempts to spare. A task Cloud Tasks drops while the job still has
    attempts leaves it `retrying` with no task: the cleanup finds it and enqueues it again."""
    if max_attempts == UNLIMITED:
        return False
    return used >= max_attempts


def queue_backoff(retry_count: int, min_backoff: float, max_backoff: float, max_doublings: int) -> float:
    """Seconds Cloud Tasks waits before retry number `retry_count` (1-based): doubles `max_doublings` times,
    then grows linearly by the last interval, capped at `max_backoff` (e.g. 10, 20, 40, 80, 160, 240, 300)."""
    if retry_count < 1:
        return 0.0
    if retry_count <= max_doublings + 1:
        delay = min_backoff * 2 ** (retry_count - 1)
    else:
        last = min_backoff * 2 ** max_doublings
        delay = last * (retry_count - max_doublings)
    return min(delay, max_backoff)


def _transient(exc: BaseException) -> bool:
    # Our own errors carry their meaning and are handled by the caller; only raw API/network errors retry here.
    return not isinstance(exc, OncetaskError) and is_retryable(exc)


def transient_retry(max_calls: int = 4, max_seconds: float = 10.0) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: retry a call that failed transiently, at most `max_calls` times within `max_seconds`."""
    return retry(
        retry=retry_if_exception(_transient),
        stop=stop_after_attempt(max_calls) | stop_after_delay(max_seconds),
        wait=wait_random_exponential(multiplier=0.05, max=2.0),
        reraise=True,
    )


def call_with_retry(fn: Callable[[], T], max_calls: int = 4) -> T:
    return transient_retry(max_calls)(fn)()
