"""What the system is doing, cheaply: the figures of `GET /stats` and `GET /stats/timeline`.

Every figure is a count aggregation, a queue's own stats, or one bounded sample; nothing scans the jobs:

| figure | how | cost |
|---|---|---|
| jobs per state | one count per state (8) | 1 read per 1,000 jobs counted, at least 1 per count |
| per job type: total, active, failed | three counts per job type | the same |
| lapsed leases (stuck running jobs) | one count, `lease_renewed_at` older than the TTL | the same |
| dead letters, last hour and day | two counts on `failed_tasks.failed_at` | the same |
| per queue: depth, oldest task age, in flight, dispatch rate | Cloud Tasks v2beta3 `GetQueue`, `read_mask: stats` | 1 call per queue, no read |
| durations p50/p95 per job type | the latest `SAMPLE_LIMIT` jobs that completed or failed in the last `WINDOW`, newest first, only 5 fields each | 1 read per job read (at most 100) |
| timeline (completed and failed per time bucket) | two counts per bucket | as the counts |

So one `/stats` call costs 8 + 3 x job types + 3 counts (each a read per started 1,000 matches) plus at most 100
reads, and each answer says what it cost (`cost`). Answers are cached per process for `stats_cache_seconds`
(default 5 s), so a status page polling every second, or ten of them, cost one computation per 5 s per instance;
concurrent callers of a stale entry wait for one computation instead of each making their own.

Durations are measured on Firestore's own commit times (first lease acquisition, `started_at`, to the state
change that ended the job), so no two machines' clocks are compared; the windows are taken on this machine's
clock, which is fine for figures that decide nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from .jobstore import ACTIVE_STATES, JobStore
from .states import JobState
from .taskqueue import QueueReader

WINDOW = timedelta(hours=1)  # durations: jobs that finished this recently
SAMPLE_LIMIT = 100  # durations: at most this many finished jobs read (the newest)
PARALLEL = 16  # counts and queue reads in flight at once
COUNT_BATCH = 1000  # Firestore bills a count one read per batch of up to this many index entries

T = TypeVar("T")


@dataclass(frozen=True)
class QueueSpec:
    name: str
    purpose: str  # "jobs" or "callbacks"
    lane: str | None = None
    job_type: str | None = None


# Pure ------------------------------------------------------------------------------------------------------------

def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (`fraction` 0.5 for the median): a value that occurred, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def count_reads(count: int) -> int:
    """What a count aggregation that matched `count` index entries is billed."""
    return max(1, math.ceil(count / COUNT_BATCH))


def durations(sample: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per job type: how many of the sample completed and failed, and the p50/p95 of the completed ones' run time
    (first start to completion) and end-to-end time (submission to completion), in seconds."""
    by_type: dict[str, dict[str, list[float] | int]] = {}
    for job in sample:
        entry = by_type.setdefault(str(job.get("job_type", "")), {"completed": 0, "failed": 0, "run": [],
                                                                   "end_to_end": []})
        state = job.get("state")
        if state == JobState.FAILED.value:
            entry["failed"] += 1  # type: ignore[operator]
            continue
        entry["completed"] += 1  # type: ignore[operator]
        ended, started, created = job.get("state_changed_at"), job.get("started_at"), job.get("created_at")
        if isinstance(ended, datetime) and isinstance(started, datetime):
            entry["run"].append(max(0.0, (ended - started).total_seconds()))  # type: ignore[union-attr]
        if isinstance(ended, datetime) and isinstance(created, datetime):
            entry["end_to_end"].append(max(0.0, (ended - created).total_seconds()))  # type: ignore[union-attr]
    return {name: {
        "completed": entry["completed"], "failed": entry["failed"],
        "run_p50_seconds": _round(percentile(entry["run"], 0.5)),  # type: ignore[arg-type]
        "run_p95_seconds": _round(percentile(entry["run"], 0.95)),  # type: ignore[arg-type]
        "end_to_end_p50_seconds": _round(percentile(entry["end_to_end"], 0.5)),  # type: ignore[arg-type]
        "end_to_end_p95_seconds": _round(percentile(entry["end_to_end"], 0.95)),  # type: ignore[arg-type]
    } for name, entry in sorted(by_type.items())}


def bucket_edges(now: datetime, minutes: int, buckets: int) -> list[tuple[datetime, datetime]]:
    """`buckets` equal intervals covering the last `minutes`, oldest first, ending at the next multiple of the
    bucket's length (so answers computed a few seconds apart share their buckets, and cache well)."""
    size = minutes * 60 / buckets
    end_ts = math.ceil(now.timestamp() / size) * size
    return [(datetime.fromtimestamp(end_ts - (buckets - i) * size, timezone.utc),
             datetime.fromtimestamp(end_ts - (buckets - i - 1) * size, timezone.utc)) for i in range(buckets)]


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


# The cache -------------------------------------------------------------------------------------------------------

class TtlCache:
    """Values computed at most once per `ttl` seconds per key, in this process. A caller that finds an entry stale
    computes it while the others wait for that result (one computation, not one per caller)."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._computing: dict[Any, threading.Lock] = {}
        self.computations = 0

    def get(self, key: Any, compute: Callable[[], T]) -> tuple[T, float]:
        """The value and its age in seconds."""
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None and self.clock() - entry[0] < self.ttl:
                return entry[1], self.clock() - entry[0]
            value = compute()
            with self._lock:
                self._entries[key] = (self.clock(), value)
                self.computations += 1
            return value, 0.0


# The figures -----------------------------------------------------------------------------------------------------

class StatsService:
    def __init__(self, store: JobStore, reader: QueueReader, job_types: Sequence[str], queues: Sequence[QueueSpec],
                 lease_ttl_seconds: float, cache_seconds: float) -> None:
        self.store = store
        self.reader = reader
        self.job_types = list(job_types)
        self.queues = list(queues)
        self.lease_ttl_seconds = lease_ttl_seconds
        self.cache = TtlCache(cache_seconds)

    def overview(self) -> dict[str, Any]:
        value, age = self.cache.get("overview", self._overview)
        return {**value, "age_seconds": round(age, 3)}

    def timeline(self, minutes: int, buckets: int) -> dict[str, Any]:
        value, age = self.cache.get(("timeline", minutes, buckets), lambda: self._timeline(minutes, buckets))
        return {**value, "age_seconds": round(age, 3)}

    # Computations ------------------------------------------------------------------------------------------------

    def _overview(self) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        counts: dict[str, Callable[[], int]] = {f"state:{s.value}": _bind(self.store.count_in_state, s.value)
                                                for s in JobState}
        for name in self.job_types:
            counts[f"type:{name}:total"] = _bind(self.store.count_of_type, name)
            counts[f"type:{name}:active"] = _bind(self.store.count_of_type, name, ACTIVE_STATES)
            counts[f"type:{name}:failed"] = _bind(self.store.count_of_type, name, [JobState.FAILED.value])
        counts["lapsed"] = _bind(self.store.count_unrenewed_leases, now - timedelta(seconds=self.lease_ttl_seconds))
        counts["dead:hour"] = _bind(self.store.count_dead_letters, now - timedelta(hours=1))
        counts["dead:day"] = _bind(self.store.count_dead_letters, now - timedelta(days=1))
        calls: dict[str, Callable[[], Any]] = {**counts,
                                               "sample": lambda: self.store.recent_finished(now - WINDOW, SAMPLE_LIMIT)}
        calls.update({f"queue:{q.name}": _bind(self._queue, q, now) for q in self.queues})
        got = _all(calls)
        sample: list[dict[str, Any]] = got["sample"]
        return {
            "generated_at": now.isoformat(),
            "states": {s.value: got[f"state:{s.value}"] for s in JobState},
            "job_types": {name: {"total": got[f"type:{name}:total"], "active": got[f"type:{name}:active"],
                                 "failed": got[f"type:{name}:failed"]} for name in self.job_types},
            "lapsed_leases": got["lapsed"],
            "dead_letters": {"hour": got["dead:hour"], "day": got["dead:day"]},
            "queues": [got[f"queue:{q.name}"] for q in self.queues],
            "durations": {"window_seconds": WINDOW.total_seconds(), "limit": SAMPLE_LIMIT, "size": len(sample),
                          "by_job_type": durations(sample)},
            "cost": {"firestore_queries": len(counts) + 1,
                     "firestore_reads": sum(count_reads(got[key]) for key in counts) + max(1, len(sample)),
                     "cloud_tasks_calls": len(self.queues)},
        }

    def _queue(self, spec: QueueSpec, now: datetime) -> dict[str, Any]:
        figures: dict[str, Any] = {"name": spec.name, "purpose": spec.purpose, "lane": spec.lane,
                                   "job_type": spec.job_type}
        try:
            reading = self.reader.read(spec.name)
        except Exception as exc:  # noqa: BLE001 - one queue that cannot be read leaves the others' figures
            return {**figures, "error": f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"}
        age = (now - reading.oldest_due).total_seconds() if reading.oldest_due else 0.0
        return {**figures, "state": reading.state, "depth": reading.depth,
                "oldest_task_age_seconds": round(max(0.0, age), 3), "in_flight": reading.in_flight,
                "dispatched_last_minute": reading.dispatched_last_minute,
                "dispatch_rate": round(reading.dispatched_last_minute / 60, 3), "max_rate": reading.max_rate}

    def _timeline(self, minutes: int, buckets: int) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        edges = bucket_edges(now, minutes, buckets)
        calls = {(state, i): _bind(self.store.count_finished, state, start, end)
                 for i, (start, end) in enumerate(edges) for state in (JobState.COMPLETED.value,
                                                                       JobState.FAILED.value)}
        got = _all(calls)
        return {
            "generated_at": now.isoformat(),
            "bucket_seconds": minutes * 60 / buckets,
            "buckets": [{"start": start.isoformat(), "end": end.isoformat(),
                         "completed": got[(JobState.COMPLETED.value, i)], "failed": got[(JobState.FAILED.value, i)]}
                        for i, (start, end) in enumerate(edges)],
            "cost": {"firestore_queries": len(calls), "firestore_reads": sum(count_reads(v) for v in got.values()),
                     "cloud_tasks_calls": 0},
        }


def _bind(function: Callable[..., T], *args: Any) -> Callable[[], T]:
    return lambda: function(*args)


def _all(calls: Mapping[Any, Callable[[], Any]]) -> dict[Any, Any]:
    """Every call's result, run side by side (each is one round trip); the first failure is raised."""
    with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL, len(calls)))) as pool:
        futures = {key: pool.submit(call) for key, call in calls.items()}
        return {key: future.result() for key, future in futures.items()}
