"""Queue.stats (v2beta3): what a queue holds and does right now, computed from its real contents. Pure.

The service calls these figures estimates; here they are exact at the moment of the call, taken under the store's
lock, so a test can compare them with ListTasks and with what its target saw.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW = 60.0  # executed_last_minute_count: real seconds, like every rate (see the README on time scale)


@dataclass
class ExecutedWindow:
    """Monotonic times of the attempts that got a reply, kept for the last minute."""

    replies: deque[float] = field(default_factory=deque)

    def add(self, now: float) -> None:
        self.replies.append(now)
        self._trim(now)

    def count(self, now: float) -> int:
        self._trim(now)
        return len(self.replies)

    def _trim(self, now: float) -> None:
        while self.replies and self.replies[0] <= now - WINDOW:
            self.replies.popleft()


@dataclass(frozen=True)
class QueueFigures:
    tasks_count: int  # every task in the queue: waiting, in flight, or failed and waiting for its retry
    oldest_estimated_arrival: int | None  # nanoseconds: the earliest schedule_time among tasks not in flight
    executed_last_minute_count: int  # attempts that got a reply (any status) during the last minute
    concurrent_dispatches_count: int  # attempts dispatched and not yet answered
    effective_execution_rate: float  # dispatches/s the queue allows now (max_dispatches_per_second, or less)

