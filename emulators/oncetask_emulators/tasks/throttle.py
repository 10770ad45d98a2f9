"""System throttling: the effective dispatch rate a queue falls back to when its target pushes back. Pure.

What production documents (HttpRequest, Queue.rate_limits): to keep a worker from being overloaded, Cloud Tasks may
temporarily lower a queue's effective rate without changing the user's settings; it backs off harder when the
worker answers 429 or 503 or the error rate is high, and it considers a `Retry-After` header. How much, how fast
and for how long are not documented. Our reading, stated as such in the README:

- 429 and 503 are the throttling answers. Each halves the effective rate, down to a floor of 1 dispatch/s (or the
  queue's own rate when that is lower), but only once per "generation": an answer to a dispatch started before the
  last cut does not cut again, so a hundred concurrent 503s from one overload count once, as in TCP's
  one-reduction-per-window. Every other status (409, 424, 500, ...) backs off only its own task.
- A high error rate is a throttling signal too: half or more of the last 20 attempts ending without any response
  (connection refused or reset, dispatch deadline passed), once at least 10 attempts were seen.
- Each 2xx raises the effective rate by 10%, up to the queue's max_dispatches_per_second: recovery is gradual and
  follows the traffic that proves the target healthy again (from the floor to 500/s takes about 65 successes).
- `Retry-After` (delay-seconds or an HTTP date) on a 429 or 503 answer sets the earliest retry of that task: its
  next attempt waits the longer of the retry config's backoff and Retry-After.

Nothing here depends on wall-clock windows, so the model behaves the same at any --time-scale; only the Retry-After
delay is a delay, and the dispatcher scales it like every backoff.
"""

from __future__ import annotations

import datetime
import email.utils
from collections import deque
from dataclasses import dataclass, field

THROTTLING_STATUSES = frozenset({429, 503})
DECREASE = 0.5  # factor applied to the effective rate on a throttling signal
INCREASE = 1.1  # factor applied on each 2xx while below the ceiling
FLOOR = 1.0  # dispatches per second the effective rate never goes below (unless the ceiling is lower)
ERROR_WINDOW = 20  # attempts remembered for the error rate
ERROR_MIN_SAMPLES = 10
ERROR_SHARE = 0.5
MAX_RETRY_AFTER = 30 * 86400.0  # no task can be scheduled further ahead than 30 days


@dataclass
class SystemThrottle:
    """A queue's effective rate under system throttling; `ceiling` is the user's max_dispatches_per_second."""

    ceiling: float
    rate: float = -1.0
    generation: int = 0  # bumped on every cut; dispatches carry the generation they started in
    _errors: deque[bool] = field(default_factory=lambda: deque(maxlen=ERROR_WINDOW))

    def __post_init__(self) -> None:
        if self.rate < 0:
            self.rate = self.ceiling

    @property
    def floor(self) -> float:
        return min(FLOOR, self.ceiling)

    @property
    def throttled(self) -> bool:
        return self.rate < self.ceiling

    def set_ceiling(self, ceiling: float) -> None:
        """UpdateQueue changed max_dispatches_per_second: an unthrottled queue follows it, a throttled one stays
        where it is (below the new ceiling) and recovers towards it."""
        self.rate = ceiling if not self.throttled else max(min(self.rate, ceiling), min(FLOOR, ceiling))
        self.ceiling = ceiling

    def observe(self, status: int | None, started_in: int) -> bool:
        """Account for one attempt's outcome (`status` None: no response at all); True when the rate changed."""
        self._errors.append(status is None)
        if status in THROTTLING_STATUSES or (status is None and self._error_rate_is_high()):
            if started_in < self.generation or self.rate <= self.floor:
                return False  # this overload was already answered by a cut, or there is nothing left to cut
            self.rate = max(self.floor, self.rate * DECREASE)
            self.generation += 1
            return True
        if status is not None and 200 <= status < 300 and self.rate < self.ceiling:
            self.rate = min(self.ceiling, self.rate * INCREASE)
            return True
        return False

    def _error_rate_is_high(self) -> bool:
        return len(self._errors) >= ERROR_MIN_SAMPLES and sum(self._errors) >= ERROR_SHARE * len(self._errors)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds from `now` a Retry-After header asks for: delay-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit alone also takes "²"
        return min(float(value), MAX_RETRY_AFTER)
    try:  # the header comes from any target: nothing in it may break the recording of the attempt
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000": RFC 9110 dates are GMT in any case
            when = when.replace(tzinfo=datetime.timezone.utc)
        return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
