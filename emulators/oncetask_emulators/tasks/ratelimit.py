"""Per-queue dispatch limits: a token bucket for the rate (at the system throttle's effective rate), a counter for
the concurrency, and the queue's runtime figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .queuestats import ExecutedWindow
from .throttle import SystemThrottle

# API-created queues report max_burst_size 100 at the default 500/s; the docs say it is "generally at least
# max_dispatches_per_second". We take the rate rounded up, between 1 and 100: a slow queue cannot burst past its
# rate, and a fast one starts at full speed without flooding the target.
MAX_DERIVED_BURST = 100


def derived_burst(max_dispatches_per_second: float) -> int:
    return max(1, min(MAX_DERIVED_BURST, math.ceil(max_dispatches_per_second)))


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    burst: int  # bucket size
    tokens: float = field(default=-1.0)
    stamp: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = float(self.burst)

    def reconfigure(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = min(self.tokens, float(burst))

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def try_take(self, now: float) -> float:
        """Take one token and return 0, or return how many seconds until one is available."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else math.inf


@dataclass
class QueueLimits:
    """What a queue may dispatch now: a token and a free concurrency slot are both needed.

    The bucket runs at the system throttle's effective rate, which is the user's max_dispatches_per_second unless the
    target pushed back (throttle.py); its burst shrinks with it, so a throttled queue cannot burst past its new rate.
    """

    bucket: TokenBucket
    max_concurrent: int
    throttle: SystemThrottle
    in_flight: int = 0
    executed: ExecutedWindow = field(default_factory=ExecutedWindow)
    last_start: int = -1  # order of this queue's latest start among all queues: the fair share's key

    @classmethod
    def for_rate(cls, rate: float, burst: int, max_concurrent: int, now: float) -> QueueLimits:
        return cls(TokenBucket(rate, burst, stamp=now), max_concurrent, SystemThrottle(rate))

    def has_slot(self) -> bool:
        return self.in_flight < self.max_concurrent

    def reconfigure(self, rate: float, burst: int, max_concurrent: int) -> None:
        """UpdateQueue changed the user's limits."""
        self.max_concurrent = max_concurrent
        self.throttle.set_ceiling(rate)
        self.bucket.reconfigure(self.throttle.rate, burst if not self.throttle.throttled else
                                derived_burst(self.throttle.rate))

    def observe(self, status: int | None, started_in: int) -> None:
        """An attempt's outcome; a change of the effective rate is applied to the bucket at once."""
        if self.throttle.observe(status, started_in):
            rate = self.throttle.rate
            self.bucket.reconfigure(rate, derived_burst(rate))
