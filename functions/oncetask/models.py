"""The public API's request and response models (pydantic): the handlers validate with them and the OpenAPI
document is generated from them, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .states import JobState

SubmitStatus = Literal["queued", "already_queued", "already_running", "already_completed", "already_failed",
                       "already_cancelled"]


class CreateJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_type: str = Field(min_length=1, max_length=100, description="A registered job type.")
    payload: dict[str, Any] = Field(default_factory=dict, description="Validated by the job type's own model.")
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=256,
        description="The same key (per caller and job type) returns the same job; null: no de-duplication.")


class CreateJobResponse(BaseModel):
    job_id: str
    status: SubmitStatus
    task_name: str | None = None


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
    created_at: str | None = None
    updated_at: str | None = None
    state_changed_at: str | None = Field(None, description="When the job entered its current state.")
    completed_at: str | None = None


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
