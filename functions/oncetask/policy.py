"""Retry policy (pure) and the bounded in-attempt retry for transient Google API calls.

Two levels of retry: inside one attempt, a transient Firestore/Storage/Tasks call is retried a few times with
jittered backoff (tenacity); a stage failure that is still transient ends the attempt with 503, and Cloud Tasks
retries the whole attempt with the queue's backoff, until the last attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import retry, retry_if_exception, stop_after_attempt, stop_after_delay, wait_random_exponential

from .errors import OncetaskError, is_retryable

T = TypeVar("T")


def is_last_attempt(task_retry_count: int, job_attempts: int, max_attempts: int) -> bool:
    """Whether a failure of this attempt is final.

    `task_retry_count` is X-CloudTasks-TaskRetryCount (0 on the first delivery of this task); `job_attempts`
    counts the job's attempts across tasks (cleanup re-enqueues under a new task, whose count starts again).
    Either reaching `max_attempts` makes it the last: answering 503 then would let Cloud Tasks drop the task and
    leave the job stuck in `retrying`. `max_attempts` <= 0 means unlimited, as in Cloud Tasks."""
    if max_attempts <= 0:
        return False
    return task_retry_count + 1 >= max_attempts or job_attempts >= max_attempts


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
