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
    code: str
    message: str
    stage: str | None = None
    retryable: bool
    attempt: int
    at: str | None = None


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
