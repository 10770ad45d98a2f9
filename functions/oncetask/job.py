"""The job record as stored in Firestore `jobs/{job_id}`, read into one immutable value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .lease import LeaseView
from .states import JobState

JOBS = "jobs"
RESULTS = "results"
FAILED_TASKS = "failed_tasks"
MAX_ERRORS_KEPT = 20  # the error history is bounded: a document is at most 1 MiB


@dataclass(frozen=True)
class Job:
    job_id: str
    job_type: str
    payload: dict[str, Any]
    payload_hash: str
    owner: str
    state: JobState
    generation: int  # the dispatch generation: the current task is named after it
    attempts: int  # lease acquisitions over the job's whole life
    fencing: int  # grows with every acquisition, never reset
    idempotency_key: str | None = None
    retry_base: int = 0  # `attempts` when a caller last retried the job: the attempts since then are what count
    incarnation: str = ""  # random per job document: a resubmission after deletion is a new incarnation
    lease_owner: str | None = None
    lease_renewed_at: datetime | None = None  # server time of the holder's last write
    lease_ttl: float | None = None  # the holder's lease TTL, in seconds
    cancel_requested: bool = False
    current_stage: str | None = None
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    task_name: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    state_changed_at: datetime | None = None  # when `state` last changed (updated_at also moves with heartbeats)
    completed_at: datetime | None = None
    expire_at: datetime | None = None
    update_time: datetime | None = None  # the document's own: every fenced write names it as its precondition
    read_time: datetime | None = None  # server time of the read this value came from: leases are judged by it

    @classmethod
    def from_dict(cls, job_id: str, data: dict[str, Any], update_time: datetime | None,
                  read_time: datetime | None = None) -> Job:
        return cls(
            job_id=job_id,
            job_type=data["job_type"],
            payload=data.get("payload") or {},
            payload_hash=data.get("payload_hash", ""),
            owner=data.get("owner", ""),
            state=JobState(data["state"]),
            generation=int(data.get("generation", 1)),
            attempts=int(data.get("attempts", 0)),
            fencing=int(data.get("fencing", 0)),
            idempotency_key=data.get("idempotency_key"),
            retry_base=int(data.get("retry_base", 0)),
            incarnation=data.get("incarnation") or "",
            lease_owner=data.get("lease_owner"),
            lease_renewed_at=data.get("lease_renewed_at"),
            lease_ttl=data.get("lease_ttl"),
            cancel_requested=bool(data.get("cancel_requested", False)),
            current_stage=data.get("current_stage"),
            checkpoints=dict(data.get("checkpoints") or {}),
            errors=list(data.get("errors") or []),
            task_name=data.get("task_name"),
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            state_changed_at=data.get("state_changed_at"),
            completed_at=data.get("completed_at"),
            expire_at=data.get("expire_at"),
            update_time=update_time,
            read_time=read_time,
        )

    @property
    def attempts_since_retry(self) -> int:
        return self.attempts - self.retry_base

    def lease_view(self, default_ttl: float) -> LeaseView:
        return LeaseView(self.state, self.generation, self.lease_renewed_at, self.lease_ttl or default_ttl,
                         self.read_time, self.cancel_requested)

    def to_api(self) -> dict[str, Any]:
        """The job as the API shows it (JSON-able)."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "job_id": self.job_id,
            "job_type": self.job_type,
            "state": self.state.value,
            "payload": self.payload,
            "idempotency_key": self.idempotency_key,
            "generation": self.generation,
            "attempts": self.attempts,
            "current_stage": self.current_stage,
            "cancel_requested": self.cancel_requested,
            "completed_stages": sorted(self.checkpoints),
            "stage_outputs": {name: cp.get("output", {}) for name, cp in self.checkpoints.items()},
            "errors": [{**e, "at": iso(e.get("at")) if isinstance(e.get("at"), datetime) else e.get("at")}
                       for e in self.errors],
            "task_name": self.task_name,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "state_changed_at": iso(self.state_changed_at),
            "completed_at": iso(self.completed_at),
        }
