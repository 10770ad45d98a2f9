"""`oncetask demo`: the product doing its job, locally, in under a minute, checking its own expectations.

It makes its inputs (images, a corrupt file, a CSV and an XLSX with invalid rows), uploads them to the bucket,
submits every job several times at once from threads (the duplicates must be absorbed), plus a job whose first
attempt fails transiently and one that keeps failing until the queue gives up. It shows progress, then a table
per job and the totals, and exits non-zero if any expectation fails.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from oncetask.job import FAILED_TASKS
from oncetask import Retry
from oncetask.policy import queue_backoff
from oncetask.settings import Settings

from . import present
from .apiclient import ApiClient, ApiError
from .children import LOOPBACK
from .inputs import INVALID_SHEET_ROWS, VALID_SHEET_ROWS, InputFile, demo_inputs
from .localclients import firestore_api, storage_api
from .stack import settings_from_env

TERMINAL = frozenset({"completed", "failed", "cancelled"})
STATES = ("queued", "running", "retrying", "completed", "failed", "cancelled")
DEMO_TIME_SCALE = 0.01


@dataclass
class DemoJob:
    label: str
    job_type: str
    payload: dict[str, Any]
    key: str
    expect_state: str
    expect_attempts: int
    check: Callable[[dict[str, Any]], str | None] = lambda job: None  # a problem with the finished job, or None
    statuses: list[str] = field(default_factory=list)  # what each submission was answered
    errors: list[str] = field(default_factory=list)  # submissions the API refused
    job_id: str | None = None
    final: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Target:
    """Where the demo sends its work: the API, and the stack's parts it reads (from LocalStack.describe())."""

    api_url: str
    description: dict[str, Any]
    own_stack: bool  # nothing else uses it: emulator counters are the demo's alone

    def settings(self) -> Settings:
        d = self.description
        return settings_from_env({"ONCETASK_PROJECT_ID": d["project_id"], "ONCETASK_BUCKET": d["bucket"],
                                  "FIRESTORE_EMULATOR_HOST": d["firestore_host"],
                                  "STORAGE_EMULATOR_HOST": d["storage_host"]})

    def tasks_stats(self) -> dict[str, Any]:
        with LOOPBACK.open(f"http://{self.description['tasks_http']}/emulator/v1/stats", timeout=5) as response:
            return json.loads(response.read())


# The plan --------------------------------------------------------------------------------------------------------

def _thumbnails_made(job: dict[str, Any]) -> str | None:
    count = job["stage_outputs"].get("manifest", {}).get("count")
    return None if count else f"no thumbnails in the manifest ({job['stage_outputs'].get('manifest')})"


def _sheet_imported(job: dict[str, Any]) -> str | None:
    report = job["stage_outputs"].get("report", {})
    got = (report.get("imported"), report.get("invalid_rows"))
    want = (VALID_SHEET_ROWS, INVALID_SHEET_ROWS)
    return None if got == want else f"imported/invalid rows {got}, expected {want}"


def _permanent_failure(job: dict[str, Any]) -> str | None:
    last = job["errors"][-1] if job["errors"] else None
    return None if last and not last["retryable"] else f"expected a permanent error, got {last}"


def plan(uploaded: dict[str, str], inputs: list[InputFile], run_id: str) -> list[DemoJob]:
    """The demo's jobs: one per input file, a flaky one and one that exhausts its attempts."""
    jobs = []
    for item in inputs:
        if item.job_type == "image.thumbnails":
            check = _thumbnails_made if item.expect == "completed" else _permanent_failure
            payload: dict[str, Any] = {"source": uploaded[item.name], "widths": [64, 128]}
        else:
            check = _sheet_imported
            payload = {"source": uploaded[item.name], "collection": f"demo_products_{run_id}"}
        jobs.append(DemoJob(item.name, item.job_type, payload, f"demo-{run_id}-{item.name}", item.expect, 1, check))
    jobs.append(DemoJob("flaky (fails once, transiently)", "test.pipeline",
                        {"sleep_ms": 100, "fail_times": 1, "fail_kind": "retryable"}, f"demo-{run_id}-flaky",
                        "completed", 2))
    jobs.append(DemoJob("always failing (transient)", "test.pipeline",
                        {"fail_times": 100, "fail_kind": "retryable"}, f"demo-{run_id}-exhausted", "failed", 3))
    return jobs


# The run -----------------------------------------------------------------------------------------------------

def upload(settings: Settings, inputs: list[InputFile], run_id: str) -> dict[str, str]:
    bucket = storage_api(settings.storage_emulator_host, settings.project_id).bucket(settings.bucket)
    uris = {}
    for item in inputs:
        blob = bucket.blob(f"demo/{run_id}/{item.name}")
        blob.upload_from_string(item.data, content_type=item.content_type)
        uris[item.name] = f"gs://{settings.bucket}/{blob.name}"
    return uris


def submit_burst(api_url: str, jobs: list[DemoJob], copies: int, threads: int,
                 on_done: Callable[[], None]) -> None:
    """Submit every job `copies` times, all at once from `threads` threads, in random order."""
    local = threading.local()
    lock = threading.Lock()
    work = [job for job in jobs for _ in range(copies)]
    random.shuffle(work)

    def one(job: DemoJob) -> None:
        if not hasattr(local, "client"):
            local.client = ApiClient(api_url)
        try:
            answer = local.client.submit(job.job_type, job.payload, job.key)
            with lock:
                job.statuses.append(answer["status"])
                job.job_id = job.job_id or answer["job_id"]
                if job.job_id != answer["job_id"]:
                    job.errors.append(f"a second job ID {answer['job_id']}")
        except ApiError as error:
            with lock:
                job.errors.append(str(error))
        finally:
            on_done()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, work))


def wait_finished(client: ApiClient, jobs: list[DemoJob], timeout: float,
                  on_poll: Callable[[Counter[str]], None]) -> bool:
    """Poll every job until all are finished (True) or `timeout` passes (False)."""
    deadline = time.monotonic() + timeout
    while True:
        for job in jobs:
            if job.job_id and job.final.get("state") not in TERMINAL:
                job.final = client.get(job.job_id)
        states = Counter(job.final.get("state", "unknown") for job in jobs)
        on_poll(states)
        if all(job.final.get("state") in TERMINAL for job in jobs):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def dead_letters(settings: Settings, jobs: list[DemoJob]) -> int:
    """How many of the jobs have a dead-letter record (read from the stack's Firestore)."""
    db = firestore_api(settings.firestore_emulator_host, settings.project_id)
    refs = [db.collection(FAILED_TASKS).document(job.job_id) for job in jobs if job.job_id]
    return sum(1 for snapshot in db.get_all(refs) if snapshot.exists)


def evaluate(jobs: list[DemoJob], totals: dict[str, Any], own_stack: bool) -> list[Check]:
    checks = [Check("every submission was accepted", not any(j.errors for j in jobs),
                    "; ".join(f"{j.label}: {e}" for j in jobs for e in j.errors))]
    created_once = [j.label for j in jobs if j.statuses.count("queued") != 1]
    checks.append(Check("each job was created by exactly one of its submissions", not created_once,
                        f"not exactly once: {created_once}" if created_once else ""))
    for job in jobs:
        state, attempts = job.final.get("state"), job.final.get("attempts")
        problems = []
        if state != job.expect_state:
            problems.append(f"state {state}, expected {job.expect_state}")
        if attempts != job.expect_attempts:
            problems.append(f"{attempts} attempts, expected {job.expect_attempts}")
        if not problems and job.final:
            problem = job.check(job.final)
            if problem:
                problems.append(problem)
        checks.append(Check(f"{job.label}: {job.expect_state} after {job.expect_attempts} attempt(s)",
                            not problems, "; ".join(problems)))
    expected_failed = sum(1 for j in jobs if j.expect_state == "failed")
    checks.append(Check("every failed job has its dead letter", totals["dead_letters"] == expected_failed,
                        f"{totals['dead_letters']} dead letters for {expected_failed} failed jobs"))
    if own_stack:
        # Nothing else uses this stack, so the emulator's counters are ours: one task per job, and one dispatch per
        # attempt (no job was processed twice).
        checks.append(Check("one Cloud Task per job, whatever the duplicates",
                            totals["tasks_created"] == totals["unique_jobs"],
                            f"{totals['tasks_created']} tasks for {totals['unique_jobs']} jobs"))
        attempts = sum(j.expect_attempts for j in jobs)
        checks.append(Check("one dispatch per attempt (nothing processed twice)", totals["dispatches"] == attempts,
                            f"{totals['dispatches']} dispatches for {attempts} attempts"))
    return checks


def run_demo(target: Target, console: Console, copies: int = 4, threads: int = 16, timeout: float = 45.0) -> int:
    """The whole demo against a running stack; the exit status (0: every expectation held)."""
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:8]
    settings = target.settings()
    client = ApiClient(target.api_url)
    scale = target.description.get("time_scale", 1.0)
    console.print(f"[bold]oncetask demo[/] (run {run_id}) against {target.api_url}")
    # The job that exhausts its attempts waits every backoff of its lane's queue (the demo app's default lane
    # keeps oncetask.Retry's defaults): allow for them at this time scale.
    retry = Retry()
    backoffs = sum(queue_backoff(n, retry.min_backoff, retry.max_backoff, retry.max_doublings)
                   for n in range(1, settings.max_attempts))
    timeout += backoffs * scale
    console.print(f"Cloud Tasks emulator time scale {scale:g}: a {retry.min_backoff:g} s backoff takes "
                  f"{retry.min_backoff * scale:g} s; the work itself runs in real time.")
    inputs = demo_inputs()
    uploaded = upload(settings, inputs, run_id)
    console.print(f"Uploaded {len(inputs)} input files to gs://{settings.bucket}/demo/{run_id}/")
    jobs = plan(uploaded, inputs, run_id)
    before = target.tasks_stats()

    with Progress(TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[states]}"), TimeElapsedColumn(), console=console) as progress:
        submitting = progress.add_task("submitted", total=len(jobs) * copies, states="")
        processing = progress.add_task("finished", total=len(jobs), states="")
        submit_burst(target.api_url, jobs, copies, threads, lambda: progress.advance(submitting))

        def show(states: Counter[str]) -> None:
            text = "  ".join(f"{s} {states.get(s, 0)}" for s in STATES)
            progress.update(processing, completed=sum(states[s] for s in TERMINAL), states=text)

        finished = wait_finished(client, jobs, timeout, show)

    after = target.tasks_stats()
    submissions = sum(len(j.statuses) + len(j.errors) for j in jobs)
    unique = len({j.job_id for j in jobs if j.job_id})
    totals = {
        "submissions": submissions,
        "unique_jobs": unique,
        "duplicates_absorbed": sum(len(j.statuses) - j.statuses.count("queued") for j in jobs),
        "tasks_created": after["tasks_created"] - before["tasks_created"],
        "dispatches": after["dispatches"] - before["dispatches"],
        "processed_once": sum(1 for j in jobs if j.final.get("state") == "completed"
                              and j.final.get("attempts") == j.expect_attempts),
        "dead_letters": dead_letters(settings, jobs),
    }
    console.print(job_table(jobs))
    console.print(totals_table(totals, target.own_stack))
    checks = evaluate(jobs, totals, target.own_stack)
    if not finished:
        checks.append(Check(f"every job finished within {timeout:g} s", False))
    for check in checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        console.print(f"{mark} {check.name}" + (f" [red]({check.detail})[/]" if not check.ok and check.detail else ""))
    failed = [c for c in checks if not c.ok]
    took = time.monotonic() - started
    if failed:
        console.print(f"[bold red]{len(failed)} expectation(s) failed[/] ({took:.1f} s)")
        return 1
    console.print(f"[bold green]All {len(checks)} expectations held[/] ({took:.1f} s).")
    return 0


# Output ------------------------------------------------------------------------------------------------------

def _outputs(job: dict[str, Any]) -> str:
    if job.get("state") == "failed" and job.get("errors"):
        last = job["errors"][-1]
        return f"[red]{last['code']}[/] in {last.get('stage')}: {last['message'][:60]}"
    outputs = job.get("stage_outputs", {})
    if "manifest" in outputs:
        return f"{outputs['manifest'].get('count')} thumbnails and a manifest"
    if "report" in outputs:
        r = outputs["report"]
        return f"{r.get('imported')} rows imported, {r.get('invalid_rows')} invalid rows reported"
    if "finish" in outputs:
        return f"{len(outputs)} stage outputs"
    return ""


def job_table(jobs: list[DemoJob]) -> Table:
    table = Table(title="Jobs", title_justify="left")
    table.add_column("job", overflow="fold")
    table.add_column("type", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("attempts", justify="right", no_wrap=True)
    table.add_column("submissions", overflow="fold")
    table.add_column("stages done", overflow="fold")
    table.add_column("outputs or error", overflow="fold", ratio=2)
    for job in jobs:
        final = job.final
        state = final.get("state", "?")
        absorbed = len(job.statuses) - job.statuses.count("queued")
        table.add_row(job.label, job.job_type, present.state(state),
                      str(final.get("attempts", "?")), f"{job.statuses.count('queued')} created, {absorbed} absorbed",
                      " → ".join(present.stage_names(final)), _outputs(final))
    return table


def totals_table(totals: dict[str, Any], own_stack: bool) -> Table:
    table = Table(title="Totals", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    note = "" if own_stack else " (all traffic on this stack)"
    rows = (("submissions", "submissions"), ("unique jobs", "unique_jobs"),
            ("duplicates absorbed", "duplicates_absorbed"), (f"tasks created{note}", "tasks_created"),
            (f"dispatches{note}", "dispatches"), ("jobs completed exactly once", "processed_once"),
            ("dead letters", "dead_letters"))
    for label, key in rows:
        table.add_row(label, str(totals[key]))
    return table
