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


class JobList(BaseModel):
    jobs: list[JobView]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last.")


class ActionResponse(BaseModel):
    job_id: str
    status: Literal["queued", "cancelled", "cancel_requested", "already_cancelled"]
    task_name: str | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = Field(None, description="The request field at fault, when one is.")


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"]
