"""The public API's request and response models (pydantic): the handlers validate with them and the OpenAPI
document is generated from them, so the two cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .states import JobState

SubmitStatus = Literal["queued", "scheduled", "already_queued", "already_scheduled", "already_running",
                       "already_waiting", "already_completed", "already_failed", "already_cancelled"]


class CallbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=2048, description="An https:// URL called (signed) when the job ends.")
    job_type: str | None = Field(None, max_length=100,
                                 description="A job type started when the job ends (its payload is a JobEnded).")
    on: list[Literal["completed", "failed", "cancelled"]] = Field(
        default_factory=lambda: ["completed", "failed"], min_length=1, description="Which endings to tell.")


class CreateJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_type: str = Field(min_length=1, max_length=100, description="A registered job type.")
    payload: dict[str, Any] = Field(default_factory=dict, description="Validated by the job type's own model.")
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=256,
        description="The same key (per caller and job type) returns the same job; null: no de-duplication.")
    delay_seconds: float | None = Field(None, ge=0, allow_inf_nan=False,
                                        description="Run no earlier than this many seconds from now (at most 30 days).")
    run_at: AwareDatetime | None = Field(None, description="Run no earlier than this time (at most 30 days ahead).")
    callback: CallbackRequest | None = Field(None, description="Tell a URL, or start a job, when this one ends.")
    lane: str | None = Field(None, max_length=40, description="The priority lane to run in (default: the job type's).")


class CreateJobResponse(BaseModel):
    job_id: str
    status: SubmitStatus
    task_name: str | None = None
    capability: str | None = Field(
        None, description="An anonymous submission's capability: send `Authorization: Capability <it>` to read, "
                          "retry or cancel the job. Only its hash is stored: keep it, it cannot be shown again.")


class JobError(BaseModel):
    code: str = Field(description="What went wrong: a gRPC/HTTP status name, TIMEOUT, a stage's own code, "
                                  "INVALID_ARGUMENT for bad input, BUG for a programming error in the code.")
    message: str
    stage: str | None = None
    retryable: bool
    attempt: int
    at: str | None = None
    type: str | None = Field(None, description="The exception's type (`KeyError`, `google.api_core.exceptions."
                                               "ServiceUnavailable`); null when no exception was raised.")
    traceback: str | None = Field(None, description="The exception's traceback, innermost frames kept (bounded); "
                                                    "kept for the last few errors of a job only.")


class Progress(BaseModel):
    stage: str | None = None
    fraction: float = Field(ge=0, le=1, description="How much of the stage is done, 0 to 1.")
    message: str = ""
    at: str | None = Field(None, description="When the stage reported it (the worker's clock).")


class StageRun(BaseModel):
    at: str | None = Field(None, description="When the stage's checkpoint was written.")
    attempt: int | None = Field(None, description="The job attempt that ran it.")
    artifacts: list[str] = Field(default_factory=list, description="gs:// URIs of the objects it wrote.")
    children: int | None = Field(None, description="How many child jobs it started, if any.")


class CallbackView(BaseModel):
    url: str | None = None
    job_type: str | None = None
    on: list[str] = Field(default_factory=list)
    pending: bool = Field(False, description="The job ended and its callback is not sent yet.")


class JobView(BaseModel):
    job_id: str
    job_type: str
    owner: str | None = Field(None, description="Who submitted it: the `sub` of its submitter's ID token (a Firebase "
                                                "uid for a person), or `capability:<hash>` for an anonymous one.")
    state: JobState
    payload: dict[str, Any]
    idempotency_key: str | None = None
    generation: int
    attempts: int
    stages: list[str] = Field(default_factory=list, description="The job type's stages, in order.")
    current_stage: str | None = None
    cancel_requested: bool
    completed_stages: list[str]
    stage_outputs: dict[str, dict[str, Any]]
    errors: list[JobError]
    task_name: str | None = None
    lane: str | None = Field(None, description="The priority lane (queue) the job runs in.")
    created_at: str | None = None
    updated_at: str | None = None
    state_changed_at: str | None = Field(None, description="When the job entered its current state.")
    completed_at: str | None = None
    run_at: str | None = Field(None, description="When a scheduled job (or a sleeping job's next stage) runs.")
    parent_job_id: str | None = Field(None, description="The job whose stage started this one, if any.")
    waiting_for: dict[str, Any] | None = Field(None, description="A waiting job's join: stage and child count.")
    progress: Progress | None = Field(None, description="The running stage's last reported progress "
                                                        "(ctx.progress), written with the lease's heartbeat.")
    trace_id: str | None = Field(None, description="The trace of the request that submitted the job: every task "
                                                   "and log line of the job carries it (Cloud Trace / Logging).")
    started_at: str | None = Field(None, description="When a worker first took the job.")
    worker: str | None = Field(None, description="The worker holding a running job's lease.")
    stage_runs: dict[str, StageRun] = Field(default_factory=dict, description="Each finished stage's checkpoint: "
                                                                              "when, which attempt, what it wrote.")
    callback: CallbackView | None = None


class ChildView(BaseModel):
    index: int
    job_id: str
    state: str | None = Field(None, description="completed, failed or cancelled once it ended; null before.")
    job_type: str | None = None
    error: dict[str, Any] | None = Field(None, description="How it failed (code, message, type...), if it did.")


class StageChildren(BaseModel):
    stage: str
    expected: int = Field(description="How many children the stage started.")
    ended: int = Field(description="How many of those listed have ended.")
    policy: str | None = Field(None, description="fail: a failed child fails the parent; collect: it goes on.")
    children: list[ChildView] = Field(description="In order, at most `limit` of them.")


class ChildrenView(BaseModel):
    job_id: str
    stages: list[StageChildren]


class JobList(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last.")


class ActionResponse(BaseModel):
    job_id: str
    status: Literal["queued", "cancelled", "cancel_requested", "already_cancelled"]
    task_name: str | None = None


class Me(BaseModel):
    owner: str = Field(description="The owner of the jobs this caller submits: its token's `sub`.")
    kind: Literal["person", "service", "development"] = Field(
        description="person: a Firebase ID token; service: a Google ID token; development: no token, where none is "
                    "required.")
    email: str | None = None
    operator: bool = Field(description="Whether the caller sees and acts on every job.")


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = Field(None, description="The request field at fault, when one is.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"]


# GET /stats ------------------------------------------------------------------------------------------------------

class JobTypeCounts(BaseModel):
    total: int
    active: int = Field(description="Queued, scheduled, running, waiting or retrying.")
    failed: int


class QueueFigures(BaseModel):
    name: str = Field(description="The Cloud Tasks queue ID.")
    purpose: str = Field(description="`jobs` or `callbacks`.")
    lane: str | None = None
    job_type: str | None = Field(None, description="Set for a job type's own queue; null for a lane's shared one.")
    state: str | None = Field(None, description="RUNNING, PAUSED or DISABLED.")
    depth: int | None = Field(None, description="Tasks in the queue: waiting, in flight, or waiting to be retried.")
    oldest_task_age_seconds: float | None = Field(
        None, description="How long the most overdue task has waited past its scheduled time (0: none is overdue).")
    in_flight: int | None = Field(None, description="Dispatched, not answered yet.")
    dispatched_last_minute: int | None = Field(None, description="Attempts answered (any status) in the last minute.")
    dispatch_rate: float | None = Field(None, description="dispatched_last_minute / 60, per second.")
    max_rate: float | None = Field(None, description="The queue's effective maximum dispatches per second.")
    error: str | None = Field(None, description="Why the figures could not be read, if they could not.")


class Durations(BaseModel):
    completed: int = Field(description="Completed jobs of this type in the sample.")
    failed: int = Field(description="Failed jobs of this type in the sample.")
    run_p50_seconds: float | None = Field(None, description="First start to completion, median.")
    run_p95_seconds: float | None = None
    end_to_end_p50_seconds: float | None = Field(None, description="Submission to completion, median.")
    end_to_end_p95_seconds: float | None = None


class DurationSample(BaseModel):
    window_seconds: float
    limit: int
    size: int = Field(description="Finished jobs read; equal to limit: more finished in the window than were read.")
    by_job_type: dict[str, Durations]


class StatsCost(BaseModel):
    firestore_queries: int
    firestore_reads: int = Field(description="Billed reads: one per 1,000 index entries a count matched (at least "
                                             "one per count), one per document of the sample (at least one).")
    cloud_tasks_calls: int


class Stats(BaseModel):
    generated_at: str = Field(description="When these figures were read.")
    age_seconds: float = Field(description="How old they are: answers come from a per-process cache.")
    states: dict[str, int] = Field(description="Jobs in each state (count aggregations).")
    job_types: dict[str, JobTypeCounts]
    lapsed_leases: int = Field(description="Running jobs whose worker stopped renewing its lease: stuck until a "
                                           "redelivery or the cleanup takes them over.")
    dead_letters: dict[str, int] = Field(description="Jobs that failed for good in the last `hour` and `day`.")
    queues: list[QueueFigures]
    durations: DurationSample
    cost: StatsCost


class TimelineBucket(BaseModel):
    start: str
    end: str
    completed: int
    failed: int


class Timeline(BaseModel):
    generated_at: str
    age_seconds: float
    bucket_seconds: float
    buckets: list[TimelineBucket] = Field(description="Oldest first; jobs that completed or failed in each.")
    cost: StatsCost
