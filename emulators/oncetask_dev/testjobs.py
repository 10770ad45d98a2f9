"""Job types for tests, the local stack, the demo and the benchmarks (never deployed): `noop` (one stage, does
nothing) and `test.pipeline`, a three-stage job with test hooks. Written with oncetask's public API only.

`test.pipeline` is for tests, the demo and the benchmark: each stage sleeps `sleep_ms` (checking the lease and
cancellation every few milliseconds, and reporting its progress), writes one small artifact, and the stage named
`fail_stage` fails on the job's first `fail_times` attempts, transiently or permanently as `fail_kind` says, or
with a programming error (`bug`: a KeyError, as a stage with a mistake raises one). With `record_runs`, each stage
that runs to completion appends a marker to `stage_runs` (job, stage, attempt, and the attempt of any checkpoint
the stage already had when it started): the fault suite counts them to prove no stage's work was done twice.
"""

from __future__ import annotations

import json
import time
from typing import Literal

from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field

import oncetask
from oncetask import Context, PermanentError, RetryableError


class NoopPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=1000, description="Free text, echoed in the output.")


app = oncetask.App("testjobs")
noop = app.job("noop", payload=NoopPayload, description="One stage that does nothing: for tests and benchmarks.")


@noop.stage(name="noop")
def _noop(ctx: Context[NoopPayload]) -> dict:
    return {"note": ctx.payload.note}


# A schedule, so that local stacks and tests have one to fire (at 03:00 UTC, as a nightly job would run).
app.schedule("noop-nightly", cron="0 3 * * *", job_type=noop, payload={"note": "nightly"})


class PipelinePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sleep_ms: int = Field(0, ge=0, le=60_000, description="Time each stage spends working.")
    fail_times: int = Field(0, ge=0, le=100, description="The failing stage fails on this many first attempts.")
    fail_kind: Literal["retryable", "permanent", "bug"] = "retryable"
    fail_stage: Literal["prepare", "work", "finish"] = "work"
    record_runs: bool = Field(False, description="Tests: append a marker to stage_runs per completed stage run.")


STAGE_RUNS = "stage_runs"
JOBS = "jobs"  # oncetask's collection of job records, read here to see the checkpoint a stage already has
PIPELINE_STAGES = ("prepare", "work", "finish")


def _checkpoint_attempt(ctx: Context[PipelinePayload]) -> int | None:
    """The attempt of the checkpoint this stage already has, if any (read before the work, for the marker)."""
    snapshot = ctx.firestore.collection(JOBS).document(ctx.job_id).get(field_paths=["checkpoints"])
    checkpoint = ((snapshot.to_dict() or {}).get("checkpoints") or {}).get(ctx.stage)
    return int(checkpoint["attempt"]) if checkpoint else None


def _record_run(ctx: Context[PipelinePayload], checkpoint_attempt: int | None) -> None:
    # Append-only (a new document per run, never an overwrite), so a stage done twice leaves two markers. Fenced
    # like any write a stage makes: a worker that lost its lease leaves none.
    marker = ctx.firestore.collection(STAGE_RUNS).document()
    ctx.batch().create(marker, {
        "job_id": ctx.job_id, "stage": ctx.stage, "attempt": ctx.attempt,
        "checkpoint_attempt_at_start": checkpoint_attempt, "at": firestore.SERVER_TIMESTAMP}).commit()


test_pipeline = app.job("test.pipeline", payload=PipelinePayload,
                        description="Three stages that can sleep and fail on chosen attempts: for tests.")


def _pipeline_stage(name: str) -> None:
    def run(ctx: Context[PipelinePayload]) -> dict:
        payload = ctx.payload
        seen = _checkpoint_attempt(ctx) if payload.record_runs else None
        started = time.monotonic()
        deadline = started + payload.sleep_ms / 1000
        while time.monotonic() < deadline:  # work in slices, so a lost lease or a cancel stops us promptly
            ctx.check()
            ctx.progress((time.monotonic() - started) / (deadline - started), f"{name}: working")
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        if name == payload.fail_stage and ctx.attempt <= payload.fail_times:
            if payload.fail_kind == "bug":
                settings: dict[str, int] = {}
                return {"width": settings["width"]}  # the mistake a bug report shows: a key nobody set
            error = RetryableError if payload.fail_kind == "retryable" else PermanentError
            raise error("INJECTED_FAILURE", f"{name} fails on attempt {ctx.attempt} of the first {payload.fail_times}")
        body = json.dumps({"stage": name, "inputs": sorted(ctx.outputs)}).encode()
        uri = ctx.artifacts.write(f"{name}.json", body, "application/json")
        if payload.record_runs:
            _record_run(ctx, seen)
        return {"artifact": uri, "bytes": len(body)}

    test_pipeline.stage(run, name=name)


for _name in PIPELINE_STAGES:
    _pipeline_stage(_name)


class FanoutPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parts: int = Field(4, ge=1, le=1000, description="How many child jobs the split stage starts.")
    sleep_ms: int = Field(0, ge=0, le=60_000, description="Time each part spends working.")
    record_runs: bool = Field(False, description="Tests: append a marker to stage_runs per completed stage run.")


class PartPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    sleep_ms: int = Field(0, ge=0, le=60_000)
    record_runs: bool = False


test_fanout = app.job("test.fanout", payload=FanoutPayload,
                      description="Splits into child jobs, then stitches their outputs: for tests.")
test_fanout_part = app.job("test.fanout.part", payload=PartPayload, description="One child of test.fanout.")


@test_fanout_part.stage(name="work")
def _part(ctx: Context[PartPayload]) -> dict:
    deadline = time.monotonic() + ctx.payload.sleep_ms / 1000
    while time.monotonic() < deadline:
        ctx.check()
        time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
    if ctx.payload.record_runs:
        _record_run(ctx, None)  # type: ignore[arg-type]
    return {"index": ctx.payload.index, "value": ctx.payload.index * 10}


@test_fanout.stage(name="split")
def _split(ctx: Context[FanoutPayload]) -> dict:
    p = ctx.payload
    ids = ctx.start_children(test_fanout_part, [PartPayload(index=i, sleep_ms=p.sleep_ms, record_runs=p.record_runs)
                                                for i in range(p.parts)])
    if p.record_runs:
        _record_run(ctx, None)  # type: ignore[arg-type]
    return {"parts": len(ids)}


@test_fanout.stage(name="stitch")
def _stitch(ctx: Context[FanoutPayload]) -> dict:
    outcomes = ctx.children()
    if ctx.payload.record_runs:
        _record_run(ctx, None)  # type: ignore[arg-type]
    # What the stitch saw: every child's state when it ran, so the fault suite can check none was still running.
    return {"total": sum(o.outputs.get("work", {}).get("value", 0) for o in outcomes),
            "seen": [{"job_id": o.job_id, "state": o.state} for o in outcomes]}
