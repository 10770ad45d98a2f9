"""One settings object, read from the environment once: where things live and how the deployment behaves.

What depends on the job types (queues, their rates and backoff, schedules) is declared in code, on the App, and
reaches the infrastructure through `App.manifest()`, never through settings that could drift from it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
# Firebase Authentication / Identity Platform signs its ID tokens with these keys (x509 certificates by key ID).
FIREBASE_CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ONCETASK_", extra="ignore", frozen=True)

    # Where things live.
    project_id: str = Field(
        "oncetask-local",
        validation_alias=AliasChoices("ONCETASK_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"),
    )
    location: str = "us-central1"
    # Queue names start with this; the rest comes from the app's lanes and job types (routing.py).
    queue_prefix: str = Field("oncetask", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
    database: str = "(default)"
    bucket: str = "oncetask-artifacts"

    # How Cloud Tasks reaches the task handler, and who it says it is.
    task_handler_url: str = "http://127.0.0.1:8082/"
    task_audience: str = ""  # empty: the handler URL, as Cloud Tasks does when oidc_token.audience is empty
    tasks_service_account: str = "oncetask-tasks@oncetask-local.iam.gserviceaccount.com"
    scheduler_service_account: str = "oncetask-scheduler@oncetask-local.iam.gserviceaccount.com"
    cleanup_audience: str = "http://127.0.0.1:8083/"
    oidc_certs_url: str = GOOGLE_CERTS_URL

    # The public API (see callers.py). Every call needs an ID token: a Google ID token whose audience is
    # `api_audience` (services), or a Firebase Authentication / Identity Platform ID token of `firebase_project_id`
    # (people). The token's `sub` owns the jobs it submits. False is for local development only: a caller without
    # a token is then the shared development caller (`anonymous`); tokens that are sent are still verified.
    api_require_auth: bool = True
    api_audience: str = ""  # empty: no Google ID token is accepted by the API
    firebase_project_id: str = ""  # empty: no Firebase ID token is accepted
    firebase_certs_url: str = FIREBASE_CERTS_URL
    # A public API, explicitly: callers without a token may submit; each such job answers with a capability (a
    # secret, only its hash stored) without which nobody but an operator can read, retry or cancel it.
    allow_anonymous_submissions: bool = False
    # Who may see and act on every job: emails (of verified addresses) and token subjects, comma-separated; and
    # any Firebase user whose token carries the custom claim `oncetask_operator: true`.
    operators: Annotated[frozenset[str], NoDecode] = frozenset()
    max_body_bytes: int = 64 * 1024

    # The status page's sign-in (Firebase Authentication in the browser): the web API key and auth domain of
    # `firebase_project_id` (public values; the auth domain defaults to <project>.firebaseapp.com).
    # `status_sign_in_url` replaces Firebase with a local token issuer's page (development and tests only).
    firebase_api_key: str = ""
    firebase_auth_domain: str = ""
    status_sign_in_url: str = ""

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

    # Quotas: at most this many queued, scheduled, running, waiting or retrying jobs per owner (0: no limit).
    owner_quota: int = Field(0, ge=0)

    # Composition: child jobs per stage and levels of children below a submitted job.
    max_children_per_stage: int = Field(1000, ge=1, le=10_000)
    max_child_depth: int = Field(5, ge=1, le=50)

    # Completion callbacks: their own queue; URL callbacks are signed with this secret (Secret Manager in
    # production); plain-http callbacks to this machine only when explicitly allowed (local development).
    callback_queue: str = "oncetask-callbacks"
    callback_secret: SecretStr = SecretStr("")
    allow_local_callbacks: bool = False

    # Operations. Prompt cancel: each task handler process listens (one Firestore listener, while it runs jobs)
    # for cancels of the jobs it holds, so a running stage hears of one within about a second instead of at its
    # next heartbeat (up to lease_ttl/3); false: the heartbeat only. /stats answers from a per-process cache this
    # many seconds old at most. Error Reporting names the service (Cloud Run sets K_SERVICE and K_REVISION).
    prompt_cancel: bool = True
    stats_cache_seconds: float = Field(5.0, ge=0, le=300)
    service_name: str = Field("oncetask", validation_alias=AliasChoices("ONCETASK_SERVICE_NAME", "K_SERVICE"))
    service_version: str = Field("", validation_alias=AliasChoices("ONCETASK_SERVICE_VERSION", "K_REVISION"))

    # Retention: finished jobs, their results and artifacts are purged after this many days.
    retention_days: int = 30

    # A job's attempts when its job type sets none (seed 000: three), -1 for unlimited; and each delivery's
    # deadline at Cloud Tasks (its default, 10 minutes), which a stage's timeout stays under.
    max_attempts: int = 3  # -1: unlimited (as Cloud Tasks)
    dispatch_deadline_seconds: float = 600.0

    # Emulators (development only). Standard variable names, so the Google libraries see the same hosts.
    firestore_emulator_host: str = Field("", validation_alias="FIRESTORE_EMULATOR_HOST")
    cloud_tasks_emulator_host: str = Field("", validation_alias="CLOUD_TASKS_EMULATOR_HOST")
    storage_emulator_host: str = Field("", validation_alias="STORAGE_EMULATOR_HOST")

    @field_validator("operators", mode="before")
    @classmethod
    def _operator_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # ONCETASK_OPERATORS=ops@example.com,1234567890
            return frozenset(item.strip() for item in value.split(",") if item.strip())
        return value

    @model_validator(mode="after")
    def _anonymous_submissions_need_auth(self) -> Settings:
        if self.allow_anonymous_submissions and not self.api_require_auth:
            raise ValueError("allow_anonymous_submissions needs api_require_auth=true: without it a caller without a "
                             "token is the shared development caller, who needs no capability")
        return self

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
    def location_path(self) -> str:
        return f"projects/{self.project_id}/locations/{self.location}"

    def queue_path(self, queue: str) -> str:
        return f"{self.location_path}/queues/{queue}"

    @property
    def callback_queue_path(self) -> str:
        return self.queue_path(self.callback_queue)

    @property
    def firebase_issuer(self) -> str:
        """The `iss` of the Firebase project's ID tokens (empty when none are accepted)."""
        return f"https://securetoken.google.com/{self.firebase_project_id}" if self.firebase_project_id else ""

    @property
    def effective_firebase_auth_domain(self) -> str:
        return self.firebase_auth_domain or (f"{self.firebase_project_id}.firebaseapp.com"
                                             if self.firebase_project_id else "")

    @property
    def effective_task_audience(self) -> str:
        return self.task_audience or self.task_handler_url

    @property
    def effective_heartbeat_seconds(self) -> float:
        return self.heartbeat_seconds or self.lease_ttl_seconds / 3

    @property
    def effective_stage_timeout_seconds(self) -> float:
        return self.stage_timeout_seconds or self.dispatch_deadline_seconds * 0.9
