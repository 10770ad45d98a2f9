"""A queue's configuration: defaults for what the request leaves unset, validation, and update masks. Pure."""

from __future__ import annotations

from google.cloud.tasks_v2.types import queue as queue_types
from google.protobuf import field_mask_pb2

from .backoff import RetryPolicy
from .errors import invalid
from .ratelimit import derived_burst

Queue = queue_types.Queue.pb()

# What the service picks for an API-created queue when a field is left unset (proto3: unset reads as zero, so a
# zero max_doublings cannot be asked for and also means "default").
DEFAULT_RATE = 500.0
MAX_RATE = 500.0
DEFAULT_CONCURRENCY = 1000
MAX_CONCURRENCY = 5000
DEFAULT_MAX_ATTEMPTS = 100
DEFAULT_MIN_BACKOFF = 0.1
DEFAULT_MAX_BACKOFF = 3600.0
DEFAULT_MAX_DOUBLINGS = 16

UPDATABLE = {
    "rate_limits", "rate_limits.max_dispatches_per_second", "rate_limits.max_concurrent_dispatches",
    "retry_config", "retry_config.max_attempts", "retry_config.max_retry_duration", "retry_config.min_backoff",
    "retry_config.max_backoff", "retry_config.max_doublings", "stackdriver_logging_config",
    "stackdriver_logging_config.sampling_ratio", "http_target",
}
OUTPUT_ONLY = {"name", "state", "purge_time", "rate_limits.max_burst_size"}


def seconds(duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def set_seconds(duration, value: float) -> None:
    duration.seconds = int(value)
    duration.nanos = int(round((value - int(value)) * 1e9))


def complete(queue) -> None:
    """Validate the queue's settings, then fill every unset one with the service's default (in place)."""
    if queue.HasField("app_engine_routing_override"):
        raise invalid("app_engine_routing_override: this emulator dispatches HTTP tasks only")
    rl, rc = queue.rate_limits, queue.retry_config
    if rl.max_dispatches_per_second < 0 or rl.max_dispatches_per_second > MAX_RATE:
        raise invalid(f"rate_limits.max_dispatches_per_second must be in (0, {MAX_RATE:g}], "
                      f"got {rl.max_dispatches_per_second:g}")
    if rl.max_concurrent_dispatches < 0 or rl.max_concurrent_dispatches > MAX_CONCURRENCY:
        raise invalid(f"rate_limits.max_concurrent_dispatches must be in [1, {MAX_CONCURRENCY}], "
                      f"got {rl.max_concurrent_dispatches}")
    if rc.max_attempts < -1:
        raise invalid(f"retry_config.max_attempts must be -1 (unlimited) or positive, got {rc.max_attempts}")
    if rc.max_doublings < 0:
        raise invalid(f"retry_config.max_doublings must not be negative, got {rc.max_doublings}")
    for field in ("max_retry_duration", "min_backoff", "max_backoff"):
        if seconds(getattr(rc, field)) < 0:
            raise invalid(f"retry_config.{field} must not be negative")
    if not 0.0 <= queue.stackdriver_logging_config.sampling_ratio <= 1.0:
        raise invalid("stackdriver_logging_config.sampling_ratio must be between 0 and 1")

    rl.max_dispatches_per_second = rl.max_dispatches_per_second or DEFAULT_RATE
    rl.max_concurrent_dispatches = rl.max_concurrent_dispatches or DEFAULT_CONCURRENCY
    rl.max_burst_size = derived_burst(rl.max_dispatches_per_second)  # output only: always the service's choice
    rc.max_attempts = rc.max_attempts or DEFAULT_MAX_ATTEMPTS
    rc.max_doublings = rc.max_doublings or DEFAULT_MAX_DOUBLINGS
    if not seconds(rc.min_backoff):
        set_seconds(rc.min_backoff, DEFAULT_MIN_BACKOFF)
    if not seconds(rc.max_backoff):
        set_seconds(rc.max_backoff, max(DEFAULT_MAX_BACKOFF, seconds(rc.min_backoff)))
    rc.max_retry_duration.SetInParent()
    if seconds(rc.min_backoff) > seconds(rc.max_backoff):
        raise invalid(f"retry_config.min_backoff ({seconds(rc.min_backoff):g}s) must not exceed "
                      f"max_backoff ({seconds(rc.max_backoff):g}s)")


def merge(current, update, mask: field_mask_pb2.FieldMask):
    """The queue `current` with the fields of `update` named by `mask` (all updatable ones when it is empty)."""
    for path in mask.paths:
        if path in OUTPUT_ONLY:
            raise invalid(f"update_mask: {path} is output only and cannot be updated")
        if path not in UPDATABLE:
            raise invalid(f"update_mask: unknown or unsupported field {path!r}")
    merged = Queue()
    merged.CopyFrom(current)
    paths = list(mask.paths) or ["rate_limits", "retry_config", "stackdriver_logging_config", "http_target"]
    field_mask_pb2.FieldMask(paths=paths).MergeMessage(update, merged, replace_message_field=True)
    merged.rate_limits.max_burst_size = 0
    complete(merged)
    return merged


def retry_policy(queue) -> RetryPolicy:
    rc = queue.retry_config
    return RetryPolicy(
        max_attempts=rc.max_attempts,
        max_retry_duration=seconds(rc.max_retry_duration),
        min_backoff=seconds(rc.min_backoff),
        max_backoff=seconds(rc.max_backoff),
        max_doublings=rc.max_doublings,
    )
