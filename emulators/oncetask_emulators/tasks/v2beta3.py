"""The same queues as google.cloud.tasks.v2beta3 sees them: Queue.stats and read_mask. Pure.

Queue.stats exists only in the v2beta3 (and v2beta2) API; production serves every version over the same queues, so
the emulator answers v2beta3 GetQueue and ListQueues from its one store. The nested messages (rate_limits,
retry_config, http_target, stackdriver_logging_config) have the same field numbers in both versions, so they are
copied as bytes; the top-level fields are renumbered and copied one by one.
"""

from __future__ import annotations

from google.cloud.tasks_v2beta3.types import queue as beta_queue_types
from google.protobuf import field_mask_pb2

from .errors import invalid
from .queuestats import QueueFigures

BetaQueue = beta_queue_types.Queue.pb()
PUSH = beta_queue_types.Queue.Type.PUSH
TASK_TTL_SECONDS = 31 * 86400  # the service's default (and maximum) task retention
_SAME_WIRE = ("rate_limits", "retry_config", "http_target", "stackdriver_logging_config")


def read_paths(mask: field_mask_pb2.FieldMask) -> list[str]:
    """The read mask's paths, checked against the v2beta3 Queue; `*` stands for every field, stats included."""
    # The proto's `type` is `type_` in the Python classes (a keyword clash); accept the API's name for it.
    paths = ["type_" + p[4:] if p == "type" or p.startswith("type.") else p for p in mask.paths]
    for path in paths:
        if path != "*" and not field_mask_pb2.FieldMask(paths=[path]).IsValidForDescriptor(BetaQueue.DESCRIPTOR):
            raise invalid(f"read_mask: {path!r} is not a field of Queue")
    return paths


def wants_stats(paths: list[str]) -> bool:
    """Stats are returned only when the mask names them (or is `*`); an empty mask means every field but stats."""
    return any(p == "*" or p == "stats" or p.startswith("stats.") for p in paths)


def queue_view(queue, stats: QueueFigures | None, paths: list[str], tombstone_seconds: float) -> object:
    """The v2beta3 Queue for a v2 one, cut down to the read mask's paths when there are any (but `*`)."""
    full = BetaQueue(name=queue.name, state=queue.state, type_=PUSH)  # proto-plus names it type_
    for name in _SAME_WIRE:
        if queue.HasField(name):
            getattr(full, name).ParseFromString(getattr(queue, name).SerializeToString())
    if queue.HasField("purge_time"):
        full.purge_time.CopyFrom(queue.purge_time)
    full.task_ttl.seconds = TASK_TTL_SECONDS
    full.tombstone_ttl.seconds = int(tombstone_seconds)
    if stats is not None:
        s = full.stats
        s.tasks_count = stats.tasks_count
        if stats.oldest_estimated_arrival is not None:
            s.oldest_estimated_arrival_time.FromNanoseconds(stats.oldest_estimated_arrival)
        s.executed_last_minute_count = stats.executed_last_minute_count
        s.concurrent_dispatches_count = stats.concurrent_dispatches_count
        s.effective_execution_rate = stats.effective_execution_rate
    if not paths or "*" in paths:
        return full
    masked = BetaQueue()
    field_mask_pb2.FieldMask(paths=paths).MergeMessage(full, masked)
    return masked
