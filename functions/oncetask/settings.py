"""One settings object, read from the environment once.

The queue's retry and rate defaults here are the single source of truth: the Terraform variables, the local
stack's queue and the handler's "is this the last attempt?" decision all read them.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONCETASK_", extra="ignore", frozen=True)

    # Where things live.
    project_id: str = Field(
        "oncetask-local",
        validation_alias=AliasChoices("ONCETASK_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"),
    )
    location: str = "us-central1"
    queue: str = "oncetask-jobs"
    database: str = "(default)"
    bucket: str = "oncetask-artifacts"

    # How Cloud Tasks reaches the task handler, and who it says it is.
    task_handler_url: str = "http://127.0.0.1:8082/"
    task_audience: str = ""  # empty: the handler URL, as Cloud Tasks does when oidc_token.audience is empty
    tasks_service_account: str = "oncetask-tasks@oncetask-local.iam.gserviceaccount.com"
    scheduler_service_account: str = "oncetask-scheduler@oncetask-local.iam.gserviceaccount.com"
    cleanup_audience: str = "http://127.0.0.1:8083/"
    oidc_certs_url: str = GOOGLE_CERTS_URL

    # The public API.
    api_require_auth: bool = False
    api_audience: str = ""
    max_body_bytes: int = 64 * 1024

    # The lease: a dead worker's job is free again after lease_ttl_seconds.
    lease_ttl_seconds: float = Field(120.0, gt=0)
    heartbeat_seconds: float = Field(0.0, ge=0)  # 0: a third of the lease TTL
    # A stage running longer than this is cut short (STAGE_TIMEOUT) and its job retried or failed; a job type may
    # set its own. 0: nine tenths of the dispatch deadline.
    stage_timeout_seconds: float = Field(0.0, ge=0)

    # Cleanup: a queued job untouched this long is checked for a lost task; queries read pages of this size.
    orphan_grace_seconds: float = 300.0
    cleanup_page_size: int = 100
    # How long verified OIDC certificates are reused before they are fetched again.
    certs_cache_seconds: float = 300.0

    # Composition: child jobs per stage and levels of children below a submitted job.
    max_children_per_stage: int = Field(1000, ge=1, le=10_000)
    max_child_depth: int = Field(5, ge=1, le=50)

    # Completion callbacks: their own queue; URL callbacks are signed with this secret (Secret Manager in
    # production); plain-http callbacks to this machine only when explicitly allowed (local development).
    callback_queue: str = "oncetask-callbacks"
    callback_secret: SecretStr = SecretStr("")
    allow_local_callbacks: bool = False

    # Retention: finished jobs, their results and artifacts are purged after this many days.
    retention_days: int = 30

    # The queue (seeds 000 and 003). Terraform's variable defaults must equal these; a test checks it.
    max_attempts: int = 3  # -1: unlimited (as Cloud Tasks)
    min_backoff_seconds: float = 30.0
    max_backoff_seconds: float = 600.0
    max_doublings: int = 3
    max_retry_duration_seconds: float = 3600.0
    max_dispatches_per_second: float = 50.0
    max_concurrent_dispatches: int = 50
    dispatch_deadline_seconds: float = 600.0

    # Emulators (development only). Standard variable names, so the Google libraries see the same hosts.
    firestore_emulator_host: str = Field("", validation_alias="FIRESTORE_EMULATOR_HOST")
    cloud_tasks_emulator_host: str = Field("", validation_alias="CLOUD_TASKS_EMULATOR_HOST")
    storage_emulator_host: str = Field("", validation_alias="STORAGE_EMULATOR_HOST")

    @field_validator("max_attempts")
    @classmethod
    def _attempts(cls, value: int) -> int:
        if value == -1 or value >= 1:
            return value
        raise ValueError("max_attempts must be at least 1, or -1 for unlimited")

    @model_validator(mode="after")
    def _stage_timeout_within_dispatch_deadline(self) -> Settings:
        if self.stage_timeout_seconds > self.dispatch_deadline_seconds:
            raise ValueError(f"stage_timeout_seconds ({self.stage_timeout_seconds:g}) must not exceed "
                             f"dispatch_deadline_seconds ({self.dispatch_deadline_seconds:g})")
        return self

    @property
    def queue_path(self) -> str:
        return f"projects/{self.project_id}/locations/{self.location}/queues/{self.queue}"

    @property
    def callback_queue_path(self) -> str:
        return f"projects/{self.project_id}/locations/{self.location}/queues/{self.callback_queue}"

    @property
    def effective_task_audience(self) -> str:
        return self.task_audience or self.task_handler_url

    @property
    def effective_heartbeat_seconds(self) -> float:
        return self.heartbeat_seconds or self.lease_ttl_seconds / 3

    @property
    def effective_stage_timeout_seconds(self) -> float:
        return self.stage_timeout_seconds or self.dispatch_deadline_seconds * 0.9
