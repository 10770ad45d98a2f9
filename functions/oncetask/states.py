"""Job states and the one table of allowed transitions. Every state write goes through `transition()`."""

from __future__ import annotations

from enum import StrEnum

from .errors import IllegalTransition


class JobState(StrEnum):
    QUEUED = "queued"  # a task for the job's current generation exists (or is about to)
    SCHEDULED = "scheduled"  # its task runs at a later time: a delayed submission, or a sleep between stages
    RUNNING = "running"  # a worker holds the lease
    WAITING = "waiting"  # its next stage waits for the child jobs a stage started; the last child wakes it
    RETRYING = "retrying"  # an attempt failed transiently; Cloud Tasks retries it after the queue's backoff
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})

# from-state -> the states it may move to. Read it as the job's whole life:
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({
        JobState.RUNNING,  # a worker took the lease
        JobState.QUEUED,  # cleanup re-enqueued an orphan under a new generation
        JobState.CANCELLED,
        JobState.FAILED,  # a delivery found its last attempt's worker dead
    }),
    JobState.SCHEDULED: frozenset({
        JobState.RUNNING,  # its time came
        JobState.QUEUED,  # cleanup: its task vanished
        JobState.CANCELLED,
        JobState.FAILED,  # a delivery found its last attempt's worker dead
    }),
    JobState.RUNNING: frozenset({
        JobState.RUNNING,  # a new worker took a lapsed lease (the fencing token grows)
        JobState.RETRYING,
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.QUEUED,  # cleanup re-enqueued a lapsed lease; or the next stage runs in its own delivery
        JobState.SCHEDULED,  # a stage asked to sleep before the next one
        JobState.WAITING,  # the next stage needs the child jobs this one started
    }),
    JobState.WAITING: frozenset({
        JobState.RUNNING,  # every child is done: the parent goes on
        JobState.CANCELLED,
        JobState.FAILED,  # a delivery found its last attempt's worker dead
    }),
    JobState.RETRYING: frozenset({
        JobState.RUNNING,
        JobState.QUEUED,  # cleanup: the retry's task vanished
        JobState.CANCELLED,
        JobState.FAILED,  # a delivery found its last attempt's worker dead
    }),
    JobState.FAILED: frozenset({JobState.QUEUED}),  # manual retry
    JobState.COMPLETED: frozenset(),  # a completed job is never processed again
    JobState.CANCELLED: frozenset(),
}


def can_transition(current: JobState | str, target: JobState | str) -> bool:
    return JobState(target) in TRANSITIONS[JobState(current)]


def transition(current: JobState | str, target: JobState | str) -> JobState:
    """The target state if the table allows `current -> target`; `IllegalTransition` otherwise."""
    if not can_transition(current, target):
        raise IllegalTransition(message=f"a job cannot go from {JobState(current).value} to {JobState(target).value}")
    return JobState(target)
