"""The job record as stored in Firestore `jobs/{job_id}`, read into one immutable value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.cloud.firestore import SERVER_TIMESTAMP

from .lease import LeaseView
from .states import JobState

JOBS = "jobs"
RESULTS = "results"
FAILED_TASKS = "failed_tasks"
CHILDREN = "children"  # jobs/{parent}/children/{child}: each child's outcome, written by its terminal commit
MAX_ERRORS_KEPT = 20  # the error history is bounded: a document is at most 1 MiB
TRACEBACKS_KEPT = 3  # only the latest errors keep their traceback (the log lines keep every one)


def with_error(errors: list[dict[str, Any]], error: dict[str, Any]) -> list[dict[str, Any]]:
    """The error history with `error` appended: the last MAX_ERRORS_KEPT errors, tracebacks on the last
    TRACEBACKS_KEPT only, so a job that failed many times stays far below Firestore's 1 MiB per document."""
    kept = [*errors, error][-MAX_ERRORS_KEPT:]
    return [e if i >= len(kept) - TRACEBACKS_KEPT or not e.get("traceback") else {**e, "traceback": None}
            for i, e in enumerate(kept)]


def new_job_data(job_type: str, payload: dict[str, Any], payload_hash: str, owner: str, idempotency_key: str | None,
                 incarnation: str, task_name: str, *, queue: str, lane: str, run_at: datetime | None = None,
                 parent: dict[str, Any] | None = None, depth: int = 0,
                 callback: dict[str, Any] | None = None, trace_id: str | None = None) -> dict[str, Any]:
    """A new job document, as submission, a parent's stage (children) and a callback (follow-up jobs) create it.
    `trace_id` is the trace of the request that made it (a child's or follow-up's: its parent's), which every task
    and log line of the job carries."""
    data: dict[str, Any] = {
        "job_type": job_type, "payload": payload, "payload_hash": payload_hash, "owner": owner,
        "idempotency_key": idempotency_key, "state": "scheduled" if run_at else "queued", "generation": 1,
        "attempts": 0, "retry_base": 0, "fencing": 0, "cancel_requested": False, "checkpoints": {}, "errors": [],
        "incarnation": incarnation, "queue": queue, "lane": lane, "task_name": task_name,
        "created_at": SERVER_TIMESTAMP,
        "updated_at": SERVER_TIMESTAMP, "state_changed_at": SERVER_TIMESTAMP, "depth": depth,
    }
    for key, value in (("run_at", run_at), ("parent", parent), ("callback", callback), ("trace_id", trace_id)):
        if value is not None:
            data[key] = value
    return data


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
    queue: str = ""  # the Cloud Tasks queue of its tasks (its lane's, its job type's own, its shard)
    lane: str = ""
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
    run_at: datetime | None = None  # a scheduled job's (or a sleeping one's next stage's) time
    parent: dict[str, Any] | None = None  # a child job's parent: job_id, incarnation, stage, index, expected, policy
    depth: int = 0  # 0 for a submitted job, parent's + 1 for a child
    waiting: dict[str, Any] | None = None  # a waiting job's join: stage, expected, policy
    callback: dict[str, Any] | None = None  # where to say the job ended: url or job_type, and on which states
    callback_pending: bool = False  # the terminal commit asked for a callback that is not enqueued yet
    started_at: datetime | None = None  # server time of the job's first lease acquisition
    trace_id: str | None = None  # the trace of the request that submitted it (32 hex), carried by all its tasks
    progress: dict[str, Any] | None = None  # the running stage's last ctx.progress(): stage, fraction, message, at
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
            queue=data.get("queue") or "",
            lane=data.get("lane") or "",
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
            run_at=data.get("run_at"),
            parent=data.get("parent"),
            depth=int(data.get("depth", 0)),
            waiting=data.get("waiting"),
            callback=data.get("callback"),
            callback_pending=bool(data.get("callback_pending", False)),
            started_at=data.get("started_at"),
            trace_id=data.get("trace_id"),
            progress=data.get("progress"),
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
            "owner": self.owner or None,
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
            "progress": ({**self.progress, "at": iso(self.progress.get("at"))
                          if isinstance(self.progress.get("at"), datetime) else self.progress.get("at")}
                         if self.progress else None),
            "trace_id": self.trace_id,
            "started_at": iso(self.started_at),
            "worker": self.lease_owner if self.state.value == "running" else None,
            "stage_runs": {name: {"at": iso(cp.get("at")) if isinstance(cp.get("at"), datetime) else cp.get("at"),
                                  "attempt": cp.get("attempt"), "artifacts": list(cp.get("artifacts") or []),
                                  "children": (cp.get("children") or {}).get("count")}
                           for name, cp in self.checkpoints.items()},
            "callback": ({"url": self.callback.get("url"), "job_type": self.callback.get("job_type"),
                          "on": list(self.callback.get("on") or []), "pending": self.callback_pending}
                         if self.callback else None),
            "task_name": self.task_name,
            "lane": self.lane or None,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "state_changed_at": iso(self.state_changed_at),
            "completed_at": iso(self.completed_at),
            "run_at": iso(self.run_at),
            "parent_job_id": (self.parent or {}).get("job_id"),
            "waiting_for": ({"stage": self.waiting.get("stage"), "children": self.waiting.get("expected")}
                            if self.waiting else None),
        }
