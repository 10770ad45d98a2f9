"""Which Cloud Tasks queue a job's tasks go to (pure): lanes, per-job-type policies and shards.

A **lane** is a priority class with its own queue(s), rate, concurrency and retry backoff: a burst in one lane
never delays another. A job type runs in its lane (its own, or the app's default; a submission may pick another).
A job type that declares its own rate or backoff gets queues of its own in each lane, since Cloud Tasks sets those
per queue. A lane may span **shards**, several queues that share its load (one queue dispatches at most 500
tasks/s); the shard is a hash of the job ID, so the same job always maps to the same queue and task names, and
de-duplication holds.

Queue names: `{prefix}-{lane}`, then `-{job type}` for a job type's own queues, then `-{shard}` when there are
several. The whole list (`plan`) is what the infrastructure creates, from the same declarations the code runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

QUEUE_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")
MAX_DISPATCHES_PER_SECOND = 500.0  # Cloud Tasks' limit for HTTP targets, per queue
MAX_CONCURRENT_DISPATCHES = 5000
BUSY_ALLOWANCE = 3  # deliveries a queue may spend on "busy" answers beyond the job's own attempts


@dataclass(frozen=True)
class QueuePolicy:
    """What Cloud Tasks applies per queue."""

    rate: float  # dispatches per second
    concurrency: int  # tasks in flight at once
    min_backoff: float
    max_backoff: float
    max_doublings: int
    max_retry_duration: float
    max_attempts: int  # the queue's; the job's own count decides failure (policy.attempts_spent)


@dataclass(frozen=True)
class QueueSpec:
    name: str  # the queue's ID
    lane: str
    job_type: str | None  # None: the lane's shared queue
    shard: int
    policy: QueuePolicy


@dataclass(frozen=True)
class Route:
    """A job type's routing: its default lane, and its own policy if it declares one (None: the lane's)."""

    lane: str
    policy: QueuePolicy | None


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "job"


def shard_of(job_id: str, shards: int) -> int:
    """The shard of a job: a hash already (job IDs are sha256 hex), so the first 8 digits spread evenly."""
    return int(job_id[:8], 16) % shards if shards > 1 else 0


def queue_name(prefix: str, lane: str, job_type: str | None, shard: int, shards: int) -> str:
    parts = [prefix, slug(lane)]
    if job_type is not None:
        parts.append(slug(job_type))
    if shards > 1:
        parts.append(str(shard))
    name = "-".join(parts)
    if not QUEUE_ID.match(name):
        raise ValueError(f"queue name {name!r} is not a valid Cloud Tasks queue ID (letters, digits, '-', <= 100)")
    return name


def queue_for(prefix: str, job_id: str, job_type: str, lane: str, routes: Mapping[str, Route],
              shards: Mapping[str, int]) -> str:
    """The queue of one job (its lane, its job type's own queues if any, its shard)."""
    route = routes.get(job_type)
    own = job_type if route is not None and route.policy is not None else None
    count = shards.get(lane, 1)
    return queue_name(prefix, lane, own, shard_of(job_id, count), count)


def plan(prefix: str, lanes: Mapping[str, tuple[QueuePolicy, int]], routes: Mapping[str, Route]) -> list[QueueSpec]:
    """Every queue of the app: each lane's shared queues, and each job type's own queues in every lane (a
    submission may move a job type to another lane)."""
    specs = []
    owners: Iterable[tuple[str | None, QueuePolicy | None]] = [
        (None, None), *((name, route.policy) for name, route in sorted(routes.items()) if route.policy is not None)]
    for owner, own_policy in owners:
        for lane, (lane_policy, shards) in lanes.items():
            for shard in range(shards):
                specs.append(QueueSpec(queue_name(prefix, lane, owner, shard, shards), lane, owner, shard,
                                       own_policy or lane_policy))
    return specs


class Router:
    """An app's lanes and job types' routes, answering which queue a job goes to."""

    def __init__(self, prefix: str, lanes: Mapping[str, tuple[QueuePolicy, int]], routes: Mapping[str, Route],
                 default_lane: str) -> None:
        self.prefix = prefix
        self.lanes = dict(lanes)
        self.routes = dict(routes)
        self.default_lane = default_lane
        self._shards = {lane: shards for lane, (_, shards) in self.lanes.items()}

    def lane_of(self, job_type: str) -> str:
        route = self.routes.get(job_type)
        return route.lane if route else self.default_lane

    def queue(self, job_id: str, job_type: str, lane: str | None = None) -> str:
        """The queue of a job of `job_type` submitted to `lane` (default: its job type's); `KeyError` for a lane
        the app does not have."""
        lane = lane or self.lane_of(job_type)
        if lane not in self.lanes:
            raise KeyError(lane)
        return queue_for(self.prefix, job_id, job_type, lane, self.routes, self._shards)

    def queues_of(self, job_type: str) -> list[str]:
        """The queues a job of this type may go to (its own or its lanes' shared ones, every shard)."""
        own = job_type if (route := self.routes.get(job_type)) is not None and route.policy is not None else None
        return [spec.name for spec in self.plan() if spec.job_type == own]

    def plan(self) -> list[QueueSpec]:
        return plan(self.prefix, self.lanes, self.routes)
