"""The protocol's holes, each replayed as the interleaving that opened it (issue: "nine ways a job is lost, failed
early, stuck, or left with wrong artifacts").

Every test here drives real workers (the product's `Processor`) against the emulators. Where a scenario needs a
worker paused between two calls, cut off from a backend, or running with a skewed clock, a gate (a pass-through
proxy in front of the emulator, tests/fixtures/gates.py) holds or fails exactly that worker's requests, or a worker
is built whose stage waits on an event. Each scenario failed on 1306aa1 and passes since the fix it names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest
import requests

import oncetask

from fixtures.tasks import wait_until
from oncetask.errors import PermanentError, RetryableError
from oncetask.job import FAILED_TASKS, JOBS, RESULTS
from oncetask_dev.testjobs import PipelinePayload
from oncetask.processor import Outcome, Processor, TaskDelivery
from oncetask.services import Services
from oncetask.settings import Settings
from oncetask.stages import Context, JobType, Stage, StageOutput
from oncetask.states import JobState

from . import served
from .conftest import LEASE_TTL, Stack, mint_token

NO_HEARTBEAT = 3600.0  # a worker built with this never renews its lease: it is paused, hung or cut off


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# Workers ------------------------------------------------------------------------------------------------------

def worker(stack: Stack, stages: dict[str, Stage] | None = None, *, storage: str | None = None,
           firestore: str | None = None, **settings: Any) -> Processor:
    """A second worker beside the stack's own: optionally with some `test.pipeline` stages replaced, its Storage or
    Firestore traffic through a gate, or other settings (e.g. `heartbeat_seconds=NO_HEARTBEAT`)."""
    updates: dict[str, Any] = dict(settings)
    if storage:
        updates["storage_emulator_host"] = storage
    if firestore:
        updates["firestore_emulator_host"] = firestore
    own = stack.settings.model_copy(update=updates)
    job_types = dict(stack.app.job_types())
    pipeline = job_types["test.pipeline"]
    if stages:
        job_types[pipeline.name] = JobType(pipeline.name, PipelinePayload,
                                           tuple(stages.get(s.name, s) for s in pipeline.stages))
    services = Services(own, job_types, stack.app.router())
    _workers.append(services)
    return services.processor


_workers: list[Services] = []


@pytest.fixture(autouse=True)
def _close_workers() -> Iterator[None]:
    """The second workers' wirings are closed after each test, as the stack's own are (their cancel listeners)."""
    yield
    while _workers:
        _workers.pop().close()


class Run:
    """A worker's `handle()` of one delivery, running in its own thread; with `retry_busy`, delivered again while
    it answers `busy` (as Cloud Tasks retries), until it finds the other worker's lease lapsed."""

    def __init__(self, processor: Processor, delivery: TaskDelivery, retry_busy: bool = False) -> None:
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.retry_busy = retry_busy
        self.thread = threading.Thread(target=self._run, args=(processor, delivery), daemon=True)
        self.thread.start()

    def _run(self, processor: Processor, delivery: TaskDelivery) -> None:
        try:
            deadline = time.monotonic() + 15
            self.outcome = processor.handle(delivery)
            while self.retry_busy and self.outcome.outcome == "busy" and time.monotonic() < deadline:
                time.sleep(0.1)
                self.outcome = processor.handle(delivery)
        except BaseException as exc:  # noqa: BLE001 - reported by result()
            self.error = exc

    def result(self, timeout: float = 30.0) -> Outcome:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker did not finish"
        assert self.error is None, f"the worker raised {self.error!r}"
        assert self.outcome is not None
        return self.outcome


def writes_then_waits(wake: threading.Event, wrote: threading.Event, body: bytes = b"first worker",
                      only_attempt: int | None = None) -> Callable[[Context], StageOutput]:
    """A stage that writes its artifact, then stops making progress (a worker that hung or died mid-stage) until
    `wake` is set. With `only_attempt`, later attempts just write and return."""

    def run(ctx: Context) -> StageOutput:
        uri = ctx.artifacts.write(f"{ctx.stage}.json", body, "application/json")
        if only_attempt is None or ctx.attempt == only_attempt:
            wrote.set()
            wake.wait(30)
        return {"artifact": uri}

    return run


def deliver_until_acquired(stack: Stack, job_id: str, generation: int = 1, retry_count: int = 1,
                           processor: Processor | None = None, timeout: float = 10.0) -> Outcome:
    """What Cloud Tasks' retries do: deliver again while the answer is `busy` (another worker's live lease)."""
    found: list[Outcome] = []

    def attempt() -> bool:
        outcome = (processor or stack.services.processor).handle(
            TaskDelivery(job_id, generation, "retry", retry_count))
        found[:] = [outcome]
        return outcome.outcome != "busy"

    wait_until(attempt, timeout=timeout, interval=0.1, message="a delivery to find the lease lapsed")
    return found[0]


def is_upload(method: str, path: str) -> bool:
    return method == "POST" and path.startswith("/upload/")


def is_delete(method: str, path: str) -> bool:
    return method == "DELETE" and "/o/" in path


# 1. Artifact deletes are fenced --------------------------------------------------------------------------------

def test_a_stalled_workers_delete_cannot_remove_what_its_successor_wrote(make_stack, http_gate, storage_host) -> None:
    """W0 writes its stage's artifact and dies before its checkpoint. W1 takes over and starts removing W0's
    partial files, but its delete stalls in the network while its own lease lapses. W2 takes over and completes
    the job. Then W1's delete lands: it must not remove anything W2 wrote."""
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="late-delete")
    wake, wrote = threading.Event(), threading.Event()
    w0 = Run(worker(stack, {"prepare": Stage("prepare", writes_then_waits(wake, wrote))},
                    heartbeat_seconds=NO_HEARTBEAT), TaskDelivery(job_id, 1, "t", 0))
    try:
        assert wrote.wait(10)
        gate = http_gate(storage_host)
        stalled = gate.hold(is_delete)
        w1 = Run(worker(stack, storage=gate.url, heartbeat_seconds=NO_HEARTBEAT),
                 TaskDelivery(job_id, 1, "t", 1), retry_busy=True)
        gate.wait_held(stalled, timeout=15)  # W1 took the lease and its delete is on the wire
        assert stack.job(job_id).fencing == 2
        w2 = deliver_until_acquired(stack, job_id, retry_count=2)
        assert w2.outcome == "completed"
        stalled.release()
        assert w1.result().status == 409  # it finds its lease gone and stops
    finally:
        wake.set()
    w0.result()
    assert stack.job(job_id).state is JobState.COMPLETED
    assert stack.artifact_problems(job_id) == []


def test_a_failing_workers_cleanup_cannot_remove_what_a_manual_retry_wrote(make_stack, http_gate,
                                                                          storage_host) -> None:
    """W1's stage fails for good after writing part of its files, and removing them is slow. Whatever it has
    committed by then, a manual retry's run of the stage (W2) must keep every file it checkpoints."""
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="failed-then-retried")

    def writes_then_fails(ctx: Context) -> StageOutput:
        ctx.artifacts.write("work.json", b"first worker")
        raise PermanentError("BROKEN", "the first run fails for good after writing")

    gate = http_gate(storage_host)
    slow = gate.hold(is_delete)
    w1 = Run(worker(stack, {"work": Stage("work", writes_then_fails)}, storage=gate.url),
             TaskDelivery(job_id, 1, "t", 0))
    gate.wait_held(slow, timeout=15)
    if stack.job(job_id).state is JobState.FAILED:  # the job was failed before its partial files were removed
        assert stack.api_client.post(f"/jobs/{job_id}/retry").status_code == 202
        assert stack.services.processor.handle(TaskDelivery(job_id, 2, "t", 0)).outcome == "completed"
        slow.release()
        w1.result()
    else:  # the partial files go before the job is failed: nothing can run in between
        slow.release()
        w1.result()
        assert stack.api_client.post(f"/jobs/{job_id}/retry").status_code == 202
        assert stack.services.processor.handle(TaskDelivery(job_id, 2, "t", 0)).outcome == "completed"
    assert stack.job(job_id).state is JobState.COMPLETED
    assert stack.artifact_problems(job_id) == []


# 2. Cancel removes the cut-short stage's files, whatever the state --------------------------------------------

def test_cancelling_a_retrying_job_removes_the_cut_short_stages_files(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="cancel-retrying")

    def writes_then_fails_transiently(ctx: Context) -> StageOutput:
        ctx.artifacts.write("work.json", b"half")
        raise RetryableError("FLAKY", "a transient failure after a partial write")

    outcome = worker(stack, {"work": Stage("work", writes_then_fails_transiently)}).handle(
        TaskDelivery(job_id, 1, "t", 0))
    assert outcome.outcome == "retrying" and stack.job(job_id).state is JobState.RETRYING
    answer = stack.api_client.post(f"/jobs/{job_id}/cancel")
    assert answer.status_code == 202 and answer.get_json()["status"] == "cancelled"
    assert stack.job(job_id).state is JobState.CANCELLED
    assert stack.artifact_problems(job_id) == []


def test_cancelling_a_dead_workers_job_removes_its_partial_files_when_the_next_delivery_closes_it(
        make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="cancel-dead")
    wake, wrote = threading.Event(), threading.Event()
    w0 = Run(worker(stack, {"work": Stage("work", writes_then_waits(wake, wrote))}, heartbeat_seconds=NO_HEARTBEAT),
             TaskDelivery(job_id, 1, "t", 0))
    try:
        assert wrote.wait(10)
        assert stack.api_client.post(f"/jobs/{job_id}/cancel").get_json()["status"] == "cancel_requested"
        outcome = deliver_until_acquired(stack, job_id)  # the task's retry, once the dead worker's lease lapsed
        assert outcome.outcome == "cancelled"
    finally:
        wake.set()
    w0.result()
    assert stack.job(job_id).state is JobState.CANCELLED
    assert stack.artifact_problems(job_id) == []


def test_cancelling_a_job_cleanup_requeued_removes_its_dead_workers_partial_files(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="cancel-requeued")
    wake, wrote = threading.Event(), threading.Event()
    w0 = Run(worker(stack, {"work": Stage("work", writes_then_waits(wake, wrote))}, heartbeat_seconds=NO_HEARTBEAT),
             TaskDelivery(job_id, 1, "t", 0))
    try:
        assert wrote.wait(10)
        wait_until(lambda: stack.services.cleanup.run().requeued == 1, timeout=10, interval=0.2,
                   message="cleanup to requeue the dead worker's job")
        assert stack.job(job_id).state is JobState.QUEUED
        assert stack.api_client.post(f"/jobs/{job_id}/cancel").get_json()["status"] == "cancelled"
    finally:
        wake.set()
    w0.result()
    assert stack.job(job_id).state is JobState.CANCELLED
    assert stack.artifact_problems(job_id) == []


# 3. Only the job's own executions count as attempts ------------------------------------------------------------

def test_deliveries_answered_busy_do_not_use_up_the_jobs_attempts(make_stack, grpc_gate, firestore_emulator) -> None:
    """A worker holds the job and loses its network: three deliveries meanwhile find its lease live and answer
    busy (Cloud Tasks counts them as retries). The next delivery's run is the job's second, not its last: a
    transient failure then must retry the job, not fail it for good."""
    stack = make_stack(paused=True, max_attempts=3)
    job_id = stack.submit_ok(payload={"fail_stage": "prepare", "fail_times": 2}, key="busy-retries")
    wake, wrote = threading.Event(), threading.Event()
    gate = grpc_gate(firestore_emulator.host)
    w0 = Run(worker(stack, {"prepare": Stage("prepare", writes_then_waits(wake, wrote))}, firestore=gate.host),
             TaskDelivery(job_id, 1, "t", 0))
    try:
        assert wrote.wait(10)
        for retry_count in (1, 2, 3):
            outcome = stack.services.processor.handle(TaskDelivery(job_id, 1, "t", retry_count))
            assert outcome.outcome == "busy"
        gate.fail(lambda method, request: True)  # W0 is cut off: its heartbeats fail, its lease lapses
        outcome = deliver_until_acquired(stack, job_id, retry_count=4)
    finally:
        wake.set()
    w0.result()
    job = stack.job(job_id)
    assert (outcome.outcome, job.state, job.attempts) == ("retrying", JobState.RETRYING, 2)
    assert stack.doc(FAILED_TASKS, job_id) is None


# 4. A hung stage cannot keep its job running forever -----------------------------------------------------------

def test_a_hung_stage_times_out_and_its_job_is_retried(make_stack) -> None:
    stack = make_stack(paused=True, stage_timeout_seconds=1.0)
    job_id = stack.submit_ok(key="hung")
    wake, wrote = threading.Event(), threading.Event()

    def hangs_on_first_attempt(ctx: Context) -> StageOutput:
        if ctx.attempt == 1:
            wrote.set()
            wake.wait(30)  # never calls ctx.check(): hung in a library call
            ctx.artifacts.write("late.json", b"written after the stage's deadline")
        return {"artifact": ctx.artifacts.write("prepare.json", b"ok")}

    hung = Run(worker(stack, {"prepare": Stage("prepare", hangs_on_first_attempt)}), TaskDelivery(job_id, 1, "t", 0))
    try:
        assert wrote.wait(10)
        job = stack.wait_state(job_id, JobState.RETRYING, JobState.FAILED, timeout=10)
        assert (job.state, job.errors[-1]["code"], job.lease_owner) == (JobState.RETRYING, "STAGE_TIMEOUT", None)
    finally:
        wake.set()
    assert hung.result().status == 409  # the hung worker, when it wakes, is fenced off
    assert not any(name.endswith("late.json") for name in stack.artifacts(job_id))
    assert stack.services.processor.handle(TaskDelivery(job_id, 1, "t", 1)).outcome == "completed"
    assert stack.artifact_problems(job_id) == []


# 5. A resubmitted job is not blocked by what its previous incarnation left ------------------------------------

def test_a_leftover_result_does_not_block_a_resubmitted_job(stack: Stack) -> None:
    job_id = stack.submit_ok(key="reborn")
    first = stack.wait_state(job_id, JobState.COMPLETED)
    # Firestore's TTL deletes `jobs/{id}` and `results/{id}` independently: the job went first.
    stack.services.store.client.collection(JOBS).document(job_id).delete()
    assert stack.submit_ok(key="reborn") == job_id
    again = stack.wait_state(job_id, JobState.COMPLETED, timeout=15)
    assert again.attempts == 1 and again.created_at > first.created_at
    assert stack.doc(RESULTS, job_id)["completed_at"] == again.completed_at


# 6. A worker that lost its lease writes no artifact -----------------------------------------------------------

def test_a_worker_cut_off_past_its_lease_stops_retrying_its_upload(make_stack, http_gate, storage_host) -> None:
    """W1's uploads fail slowly (a network in trouble) and it cannot renew its lease. W2 takes over and completes
    the job; then the network heals. None of W1's upload retries may land after W2 took over."""
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="cut-off")
    gate = http_gate(storage_host)
    trouble = gate.fail(is_upload, status=503, delay=1.0)
    w1 = Run(worker(stack, storage=gate.url, heartbeat_seconds=NO_HEARTBEAT), TaskDelivery(job_id, 1, "t", 0))
    wait_until(lambda: trouble.seen >= 1, message="W1's first upload")
    assert deliver_until_acquired(stack, job_id).outcome == "completed"
    healed_at = time.monotonic()
    gate.remove(trouble)
    w1.result()
    late = [c for c in gate.calls if c.forwarded and is_upload(c.method, c.path) and c.at >= healed_at]
    assert late == []
    assert stack.artifact_problems(job_id) == []


# 7. The retention purge never deletes a job that changed since it was queried -----------------------------------

def test_the_retention_purge_leaves_a_job_that_was_retried_after_its_query(make_stack, grpc_gate,
                                                                          firestore_emulator) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(payload={"fail_kind": "permanent", "fail_times": 1}, key="purge-vs-retry")
    assert stack.services.processor.handle(TaskDelivery(job_id, 1, "t", 0)).outcome == "failed"
    kept = stack.named_artifacts(job_id)
    assert kept  # prepare's checkpointed file: a retry resumes after it

    gate = grpc_gate(firestore_emulator.host)
    deletes_the_job = gate.hold(lambda method, request: method == "Commit" and any(
        w.delete.endswith(f"/documents/{JOBS}/{job_id}") for w in request.writes))
    gated = stack.services_with(firestore_emulator_host=gate.host)
    later = utcnow() + timedelta(days=stack.settings.retention_days + 1)
    purge = threading.Thread(target=lambda: gated.cleanup.run(now=later), daemon=True)
    purge.start()
    gate.wait_held(deletes_the_job, timeout=15)
    assert stack.api_client.post(f"/jobs/{job_id}/retry").status_code == 202
    deletes_the_job.release()
    purge.join(30)
    job = stack.services.store.get(job_id)
    assert job is not None and job.state is JobState.QUEUED
    assert kept <= set(stack.artifacts(job_id))


# 8. One meaning of max_attempts ---------------------------------------------------------------------------------

def test_max_attempts_of_zero_is_refused_by_name() -> None:
    with pytest.raises(pydantic.ValidationError, match="max_attempts"):
        Settings(max_attempts=0)


def test_unlimited_attempts_are_never_spent_by_cleanup(make_stack) -> None:
    stack = make_stack(paused=True, max_attempts=-1)
    job_id = stack.submit_ok(key="unlimited")
    wake, wrote = threading.Event(), threading.Event()
    w0 = Run(worker(stack, {"work": Stage("work", writes_then_waits(wake, wrote))}, heartbeat_seconds=NO_HEARTBEAT),
             TaskDelivery(job_id, 1, "t", 0))
    try:
        assert wrote.wait(10)
        wait_until(lambda: stack.services.cleanup.run().requeued == 1, timeout=10, interval=0.2,
                   message="cleanup to recover the dead worker's job")
    finally:
        wake.set()
    w0.result()
    assert stack.job(job_id).state is JobState.QUEUED
    assert stack.services.processor.handle(TaskDelivery(job_id, 2, "t", 0)).outcome == "completed"


# 9. A lease's lapse is judged by server time, never by comparing two machines' clocks ---------------------------

HOLDER_TTL = 5 * LEASE_TTL  # the live holder's lease: renewed in time even on a loaded machine


def test_cleanup_with_a_clock_ahead_leaves_a_live_lease_alone(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(payload={"sleep_ms": 1000}, key="skewed-cleanup")
    holder = Run(worker(stack, lease_ttl_seconds=HOLDER_TTL), TaskDelivery(job_id, 1, "t", 0))
    stack.wait_state(job_id, JobState.RUNNING)
    report = stack.services.cleanup.run(now=utcnow() + timedelta(seconds=5 * HOLDER_TTL))  # its clock is ahead
    assert report.requeued == 0
    assert holder.result().outcome == "completed"
    assert stack.job(job_id).fencing == 1


def test_a_worker_with_a_clock_ahead_does_not_take_a_live_lease(make_stack, monkeypatch) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(payload={"sleep_ms": 1000}, key="skewed-worker")
    holder = Run(worker(stack, lease_ttl_seconds=HOLDER_TTL), TaskDelivery(job_id, 1, "t", 0))
    stack.wait_state(job_id, JobState.RUNNING)
    import oncetask.processor  # noqa: PLC0415

    real, intruder = oncetask.processor.utcnow, threading.current_thread()
    # Only the intruding delivery (this thread) runs with the clock ahead; the holder's threads keep the true time.
    monkeypatch.setattr(oncetask.processor, "utcnow", lambda: real() + timedelta(seconds=5 * HOLDER_TTL)
                        if threading.current_thread() is intruder else real())
    assert stack.services.processor.handle(TaskDelivery(job_id, 1, "t", 1)).outcome == "busy"
    monkeypatch.undo()
    assert holder.result().outcome == "completed"
    assert stack.job(job_id).fencing == 1


# Also found in the same review ------------------------------------------------------------------------------------

def test_a_jobs_own_transient_failure_does_not_answer_a_status_that_throttles_the_queue(make_stack) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(payload={"fail_times": 1}, key="no-throttle")
    outcome = stack.services.processor.handle(TaskDelivery(job_id, 1, "t", 0))
    assert outcome.outcome == "retrying"
    assert not 200 <= outcome.status < 300 and outcome.status not in (429, 503)


def test_a_backend_outage_answers_503_with_retry_after(make_stack, grpc_gate, firestore_emulator, handler_server,
                                                       tasks_emulator, task_target) -> None:
    stack = make_stack(paused=True)
    job_id = stack.submit_ok(key="outage")
    gate = grpc_gate(firestore_emulator.host)
    gate.fail(lambda method, request: True)
    served.use(oncetask.App("gated").include(stack.app).configure(
        stack.settings.model_copy(update={"firestore_emulator_host": gate.host})))
    token = mint_token(tasks_emulator, task_target, stack.settings.tasks_service_account,
                       stack.settings.effective_task_audience)
    answer = requests.post(handler_server, json={"job_id": job_id, "generation": 1},
                           headers={"Authorization": token}, timeout=60)
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0


def test_cleanup_goes_on_past_one_jobs_error(make_stack, http_gate, storage_host) -> None:
    stack = make_stack(paused=True)
    broken, fine = (stack.submit_ok(payload={"fail_kind": "permanent", "fail_times": 1, "fail_stage": "work"},
                                    key=key) for key in ("purge-broken", "purge-fine"))
    for job_id in (broken, fine):
        assert stack.services.processor.handle(TaskDelivery(job_id, 1, "t", 0)).outcome == "failed"
    lapsed = stack.submit_ok(key="lapsed-too")
    wake, wrote = threading.Event(), threading.Event()
    w0 = Run(worker(stack, {"work": Stage("work", writes_then_waits(wake, wrote))}, heartbeat_seconds=NO_HEARTBEAT),
             TaskDelivery(lapsed, 1, "t", 0))
    assert wrote.wait(10)
    time.sleep(LEASE_TTL + 0.2)

    gate = http_gate(storage_host)
    gate.fail(lambda method, path: is_delete(method, path) and broken in path, status=403)
    gated = stack.services_with(storage_emulator_host=gate.url)
    try:
        report = gated.cleanup.run(now=utcnow() + timedelta(days=stack.settings.retention_days + 1))
    finally:
        wake.set()
    w0.result()
    assert report.errors == 1
    assert report.requeued == 1 and stack.job(lapsed).state is JobState.QUEUED
    assert stack.services.store.get(fine) is None and stack.artifacts(fine) == []


def test_a_stalled_import_batch_cannot_overwrite_a_newer_import(make_stack, grpc_gate, firestore_emulator) -> None:
    """W1's upsert batch stalls on the wire after its lease check; its lease lapses, W2 finishes the same job, and
    a newer import of the same products completes. Then W1's batch arrives: it must change nothing."""
    stack = make_stack(paused=True)
    bucket = stack.services.bucket

    def source(name: str, price: str) -> str:
        rows = "sku,name,quantity,price\nA-1,Lamp,3," + price + "\n"
        bucket.blob(f"in/{name}.csv").upload_from_string(rows.encode())
        return f"gs://{bucket.name}/in/{name}.csv"

    old = stack.submit_ok("sheet.import", {"source": source("old", "10.00"), "collection": "products"}, key="old")
    gate = grpc_gate(firestore_emulator.host)
    stall = gate.hold(lambda method, request: method == "Commit" and any(
        "/documents/products/" in (w.update.name or "") for w in request.writes))
    # A longer lease than the stack's: W1 must reach its upsert on it without a heartbeat, on a loaded machine too.
    w1 = Run(worker(stack, firestore=gate.host, heartbeat_seconds=NO_HEARTBEAT, lease_ttl_seconds=3 * LEASE_TTL),
             TaskDelivery(old, 1, "t", 0))
    gate.wait_held(stall, timeout=15)
    assert deliver_until_acquired(stack, old).outcome == "completed"
    new = stack.submit_ok("sheet.import", {"source": source("new", "12.00"), "collection": "products"}, key="new")
    assert stack.services.processor.handle(TaskDelivery(new, 1, "t", 0)).outcome == "completed"
    stall.release()
    w1.result()
    product = stack.services.store.client.collection("products").document("A-1").get().to_dict()
    assert (product["price"], product["import_job"]) == ("12.00", new)
