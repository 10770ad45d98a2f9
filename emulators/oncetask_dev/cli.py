"""`oncetask`: run your app locally (`dev`, `demo`), check it (`check`), make its deployable source (`bundle`),
and talk to a running API (`submit`, `status`, `list`, `retry`, `cancel`, `cleanup`). Readable output by default,
`--json` for scripts; the API's errors are shown as the API phrased them, with exit status 1; a command that
cannot run as asked (a wrong --app, a missing dependency, no API URL) says why, with exit status 2."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from oncetask import App
from oncetask.clients import tasks_client
from oncetask.logs import TRACE_KEY, new_trace_id, trace_headers

from . import logfile, present, stackfile
from .apiclient import ApiClient, ApiError
from .appref import AppError, importable_from, load_checked, resolve
from .logview import LogView
from .scheduler import SCHEDULER_QUEUE, trigger_cleanup
from .stack import DEFAULT_APP, PARTS, ChildDied, LocalStack, StackError, StackOptions, settings_from_env

OUT = Console()
ERR = Console(stderr=True)
TERMINAL = frozenset({"completed", "failed", "cancelled"})
DEV_PORTS = {"api": 8081, "task_handler": 8082, "cleanup": 8083}  # the URLs Settings defaults to


INSTALL_DEV = "pip install 'oncetask[dev]'"
# What the stack's children import (they run `python -m oncetask_emulators...`): checked before any starts, so a
# missing one is one sentence instead of three tracebacks.
STACK_MODULES = {"grpc": "grpcio", "cryptography": "cryptography", "google_crc32c": "google-crc32c",
                 "functions_framework": "functions-framework"}


class UsageError(Exception):
    """The command cannot run as asked (no API URL, no running stack, bad JSON, a missing dependency): exit 2."""


def _require(command: str, modules: dict[str, str], install: str = INSTALL_DEV) -> None:
    """UsageError naming what to install if any of `modules` (module -> distribution) cannot be imported."""
    missing = sorted({dist for module, dist in modules.items() if importlib.util.find_spec(module) is None})
    if missing:
        raise UsageError(f"`oncetask {command}` needs {', '.join(missing)}, not installed here: {install}")


# Talking to a running API --------------------------------------------------------------------------------------

def _api_url(args: argparse.Namespace) -> str:
    url = args.api or os.environ.get("ONCETASK_API_URL")
    if not url:
        running = stackfile.read()
        url = running["api_url"] if running else None
    if not url:
        raise UsageError("no API URL: pass --api URL, set ONCETASK_API_URL, or start `oncetask dev` in this "
                         "directory first")
    return url


def _client(args: argparse.Namespace) -> ApiClient:
    try:
        return ApiClient(_api_url(args))
    except ValueError as error:
        raise UsageError(str(error)) from error


def _emit(args: argparse.Namespace, data: Any, render: Callable[[Any], None]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        render(data)


def _show_job(job: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("job", job["job_id"])
    table.add_row("type", job["job_type"])
    state = present.state(job["state"])
    if job.get("state_changed_at"):
        state += f" for {present.age(job['state_changed_at'])}"
    if job.get("cancel_requested"):
        state += " (cancel requested)"
    table.add_row("state", state)
    table.add_row("stage", job.get("current_stage") or "-")
    if job.get("progress"):
        table.add_row("progress", present.progress(job["progress"]))
    table.add_row("attempts", f"{job['attempts']} (generation {job['generation']})"
                  + (f", worker {job['worker']}" if job.get("worker") else ""))
    table.add_row("done stages", " → ".join(present.stage_names(job)) or "-")
    outputs = job.get("stage_outputs", {})
    for stage in present.stage_names(job, list(outputs)):
        table.add_row(f"  {stage}", json.dumps(outputs[stage], sort_keys=True))
    errors = job.get("errors", [])
    for error in errors:
        kind = "retryable" if error.get("retryable") else "permanent"
        table.add_row("[red]error[/]", Text(f"attempt {error.get('attempt')}, {error.get('stage') or '-'}: "
                                            f"{error['code']} ({kind}): {error['message']}"
                                            + (f"  [{error['type']}]" if error.get("type") else "")))
    if errors and errors[-1].get("traceback"):  # the last failure's stack: where it came from
        table.add_row("[red]traceback[/]", Text(errors[-1]["traceback"].rstrip(), style="dim"))
    table.add_row("updated", job.get("updated_at") or "-")
    if job.get("trace_id"):
        table.add_row("trace", job["trace_id"])
    OUT.print(table)


WIDE = 120  # below this many columns, a list is two lines per job instead of a table


def _show_list(page: dict[str, Any]) -> None:
    rows = [(job["job_id"], present.state(job["state"]), str(job["attempts"]),
             present.age(job.get("state_changed_at") or job.get("updated_at")), job["job_type"],
             job.get("current_stage") or "", present.last_error(job)) for job in page["jobs"]]
    if OUT.width >= WIDE:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("job", "state", "tries", "in state", "type", "stage"):
            table.add_column(column, no_wrap=True, justify="right" if column == "tries" else "left")
        table.add_column("last error", overflow="fold")
        for row in rows:
            table.add_row(*row)
        OUT.print(table)
    else:
        for job_id, state, tries, since, job_type, stage, error in rows:
            OUT.print(f"{job_id}  {state}  {tries} tries  {since}")
            OUT.print(f"  {job_type}" + (f" · {stage}" if stage else "") + (f" · [red]{error}[/]" if error else ""),
                      highlight=False)
    if not rows:
        OUT.print("no jobs")
    if page.get("next_cursor"):
        OUT.print(f"more: --cursor {page['next_cursor']}")


def _show_action(answer: dict[str, Any]) -> None:
    OUT.print(f"{answer['job_id']}: [bold]{answer['status']}[/]"
              + (f" (task {answer['task_name'].rsplit('/', 1)[-1]})" if answer.get("task_name") else ""))


def cmd_submit(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload)
    except ValueError as error:
        raise UsageError(f"--payload is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise UsageError("--payload must be a JSON object")
    client = _client(args)
    answer = client.submit(args.job_type, payload, args.key)
    if args.wait:
        job = _wait_terminal(client, answer["job_id"], args.wait)
        _emit(args, job, _show_job)
        if job["state"] != "completed":
            ERR.print(f"the job is {job['state']}" + (f" after {args.wait:g} s" if job["state"] not in TERMINAL
                                                      else ""))
            return 1
        return 0
    _emit(args, answer, _show_action)
    return 0


def _wait_terminal(client: ApiClient, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(job_id)
        if job["state"] in TERMINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def cmd_status(args: argparse.Namespace) -> int:
    _emit(args, _client(args).get(args.job_id), _show_job)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _emit(args, _client(args).list(args.state, args.limit, args.cursor, args.type), _show_list)
    return 0


def _show_stats(stats: dict[str, Any]) -> None:
    states = stats["states"]
    OUT.print("  ".join(f"{present.state(name)} {states[name]}" for name in present.STATE_ORDER if name in states)
              + f"   (as of {present.age(stats['generated_at'])} ago)", highlight=False)
    stuck = stats["lapsed_leases"]
    dead = stats["dead_letters"]
    OUT.print(("[red]" if stuck else "") + f"lapsed leases (stuck running jobs): {stuck}" + ("[/]" if stuck else "")
              + f"   dead letters: {dead['hour']} in the last hour, {dead['day']} in the last day", highlight=False)
    table = Table(title="queues", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("queue", "state", "depth", "oldest", "in flight", "done/min", "rate/s"):
        table.add_column(column, justify="left" if column in ("queue", "state") else "right",
                         no_wrap=column == "queue")
    for queue in stats["queues"]:
        if queue.get("error"):
            table.add_row(queue["name"], Text(queue["error"], style="red"), "", "", "", "", "")
            continue
        table.add_row(queue["name"], queue["state"] or "", str(queue["depth"]),
                      present.seconds(queue["oldest_task_age_seconds"]), str(queue["in_flight"]),
                      str(queue["dispatched_last_minute"]), f"{queue['max_rate']:g}")
    OUT.print(table)
    sample = stats["durations"]
    table = Table(title=f"job types (durations: the last {sample['size']} jobs finished within "
                        f"{present.seconds(sample['window_seconds'])})", title_justify="left", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for column in ("job type", "total", "active", "failed", "recent", "run p50", "run p95", "e2e p95"):
        table.add_column(column, justify="left" if column == "job type" else "right", no_wrap=column == "job type")
    for name, counts in sorted(stats["job_types"].items()):
        recent = sample["by_job_type"].get(name, {})
        table.add_row(name, str(counts["total"]), str(counts["active"]), str(counts["failed"]),
                      f"{recent['completed']} ok, {recent['failed']} failed" if recent else "",
                      present.seconds(recent.get("run_p50_seconds")), present.seconds(recent.get("run_p95_seconds")),
                      present.seconds(recent.get("end_to_end_p95_seconds")))
    OUT.print(table)
    OUT.print("[dim]total, active, failed: every job kept; recent: finished in the window; run: first start to "
              "completion; e2e: submission to completion[/]", highlight=False)
    cost = stats["cost"]
    OUT.print(f"[dim]cost of these figures: {cost['firestore_reads']} Firestore reads "
              f"({cost['firestore_queries']} queries), {cost['cloud_tasks_calls']} Cloud Tasks calls; "
              "cached by the API for a few seconds[/]", highlight=False)


def cmd_stats(args: argparse.Namespace) -> int:
    _emit(args, _client(args).stats(), _show_stats)
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    _emit(args, _client(args).retry(args.job_id), _show_action)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    _emit(args, _client(args).cancel(args.job_id), _show_action)
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    """Trigger the cleanup as the local scheduler does: a Cloud Task with the scheduler's OIDC token."""
    running = stackfile.read()
    if running is None:
        raise UsageError(f"no running local stack found ({stackfile.path()}): `cleanup` needs `oncetask dev` "
                         "(in production, Cloud Scheduler calls the cleanup function)")
    settings = settings_from_env({"ONCETASK_PROJECT_ID": running["project_id"],
                                  "CLOUD_TASKS_EMULATOR_HOST": running["tasks_host"]})
    queue = f"projects/{running['project_id']}/locations/{running['location']}/queues/{SCHEDULER_QUEUE}"
    trace = new_trace_id()  # the run's lines carry it: its report is found by it in the stack's log file
    try:
        task = trigger_cleanup(tasks_client(settings), queue, running["cleanup_url"], running["cleanup_audience"],
                               running["scheduler_service_account"], wait=args.wait,
                               headers=trace_headers(trace, "cleanup"))
    except TimeoutError as error:
        raise ApiError(None, "DEADLINE_EXCEEDED", str(error)) from error
    log_file = running.get("log_file")
    report = _cleanup_report(Path(log_file), trace) if log_file else None

    def render(data: dict[str, Any]) -> None:
        name = data["cleanup_task"].rsplit("/", 1)[-1]
        counts = data["report"]
        if counts is None:
            OUT.print(f"cleanup ran (task {name}); its counts are in the cleanup function's log")
            return
        OUT.print(f"cleanup ran: requeued {counts['requeued']}, purged {counts['purged']}, scanned "
                  f"{counts['scanned']}, errors {counts['errors']}" + ("  [red](see `oncetask logs`)[/]"
                                                                       if counts["errors"] else ""),
                  highlight=False)

    _emit(args, {"cleanup_task": task, "ran": True, "report": report}, render)
    return 0


CLEANUP_COUNTS = ("requeued", "purged", "scanned", "errors")


def _cleanup_report(path: Path, trace: str, timeout: float = 5.0) -> dict[str, int] | None:
    """The counts the cleanup run of `trace` logged ("cleanup done"), read from the stack's log file (the line may
    reach the file a moment after the task is gone); None if it does not show up in time."""
    deadline = time.monotonic() + timeout
    while True:
        for part, line in logfile.read(path):
            entry = logfile.json_fields(line) if part == "cleanup" else None
            if entry and entry.get("message") == "cleanup done" and str(entry.get(TRACE_KEY, "")).endswith(trace):
                return {name: int(entry.get(name, 0)) for name in CLEANUP_COUNTS}
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def cmd_logs(args: argparse.Namespace) -> int:
    """One job's lines (or every line) from the running stack's log file, as `oncetask dev` shows them."""
    path = _log_path(args)
    needle = args.job_id
    if args.job_id and args.trace:
        needle = _client(args).get(args.job_id).get("trace_id")
        if not needle:
            raise UsageError(f"job {args.job_id} has no trace (submitted before traces were kept)")
    parts = _parts(args.part)
    view = LogView(OUT, parts, raw=args.raw_logs, width=max(map(len, PARTS)))
    shown = 0
    source = logfile.follow(path) if args.follow else iter(logfile.in_time_order(
        (part, line) for part, line in logfile.read(path) if not needle or logfile.mentions(line, needle)))
    try:
        for part, line in source:
            if (parts is not None and part not in parts) or (needle and not logfile.mentions(line, needle)):
                continue
            shown += 1
            if args.json:
                print(json.dumps({"part": part, "line": logfile.json_fields(line) or line}), flush=True)
            else:
                view(part, line)
    except KeyboardInterrupt:
        pass
    if not shown and not args.follow:
        what = f"about job {args.job_id}" if args.job_id else "at all"
        ERR.print(f"no lines {what} in {path}" + (" (is the job ID right, and was it run by this stack?)"
                                                  if args.job_id else ""), highlight=False)
        return 1
    return 0


def _log_path(args: argparse.Namespace) -> Path:
    """--file, else the running stack's log file, else the last run's beside the state file."""
    if args.file:
        path = Path(args.file)
    else:
        running = stackfile.read()
        path = Path(running["log_file"]) if running and running.get("log_file") else \
            logfile.default_path(stackfile.path())
    if not path.exists():
        raise UsageError(f"no log file at {path}: `oncetask dev` writes one while it runs (or pass --file)")
    return path


def _parts(given: str | None) -> tuple[str, ...] | None:
    if not given:
        return None
    parts = tuple(part.strip() for part in given.split(",") if part.strip())
    unknown = [part for part in parts if part not in PARTS]
    if unknown:
        raise UsageError(f"--part: no part {', '.join(map(repr, unknown))}; the parts are {', '.join(PARTS)}")
    return parts


# Running the stack ---------------------------------------------------------------------------------------------

def _report_death(died: ChildDied) -> None:
    ERR.print(Panel(Text(f"exit code {died.exit_code}; the other parts keep running (restart `oncetask dev` to "
                         f"bring it back). Its last output:\n\n{died.tail or '(none)'}"),  # as written, no markup
                    title=f"[bold red]{died.name} died[/]", border_style="red"))


def _report_stopped(stack: LocalStack, quiet: bool) -> None:
    if not stack.children:
        return  # nothing was started
    left = stack.leftovers()
    if left:
        ERR.print(f"[red]processes of {left} are still alive[/] (pids {[stack.pids()[n] for n in left]})")
    elif not quiet:
        OUT.print("stopped: no process left behind")


def stack_table(stack: LocalStack) -> Table:
    d = stack.describe()
    table = Table(title="oncetask local stack", title_justify="left")
    for column in ("part", "where", "pid", "notes"):
        table.add_column(column, overflow="fold")
    pids = d["children"]
    options = stack.options
    rows = (
        ("api", d["api_url"], "status page at this URL; " + f"{options.api_workers} worker(s)"),
        ("task_handler", d["task_handler_url"],
         f"{options.handler_workers} gunicorn workers; OIDC audience = this URL"),
        ("cleanup", d["cleanup_url"], f"called every {options.cleanup_interval:g} s by the scheduler loop"),
        ("firestore", d["firestore_host"], "FIRESTORE_EMULATOR_HOST"),
        ("tasks", d["tasks_host"], f"JWKS {d['certs_url']}; time scale {options.time_scale:g}"),
        ("storage", d["storage_host"], f"bucket {d['bucket']}"),
    )
    for name, where, notes in rows:
        table.add_row(name, where, str(pids.get(name, "")), notes)
    return table


@contextmanager
def _signals_stop() -> Iterator[None]:
    """Ctrl-C and SIGTERM both end the `with` block (as KeyboardInterrupt); a second one is ignored while the
    stack stops, so stopping is never cut short with children left behind."""
    def interrupt(signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _serve_until_stopped(stack: LocalStack, json_out: bool) -> None:
    stackfile.write(stack.describe())
    try:
        if json_out:
            print(json.dumps(stack.describe()), flush=True)
        else:
            OUT.print(stack_table(stack))
            OUT.print(f"[bold green]ready[/]: every part answers. Status page: {stack.api_url}  "
                      f"(CLI: oncetask list; export ONCETASK_API_URL={stack.api_url})\nCtrl-C stops everything.")
        threading.Event().wait()  # until a signal ends the block
    finally:
        stackfile.remove()


def _app(command: str, given: str | None, default: str | None) -> tuple[str, App]:
    """The app a command runs (--app, else the project's [tool.oncetask] app, else `default`), loaded from the
    current directory as the functions will load it, its definitions checked."""
    reference = resolve(given, Path.cwd(), default)
    importable_from(Path.cwd())
    if reference == DEFAULT_APP:
        _require_demo_app(command)
    return reference, load_checked(reference)


def _require_demo_app(command: str) -> None:
    """The built-in examples need the catalog example project (and so Pillow and openpyxl): say so if absent."""
    try:
        from . import demoapp  # noqa: F401, PLC0415 - the check is the import
    except ModuleNotFoundError as exc:
        if exc.name == "catalog":  # its own message says how to install it
            raise UsageError(f"`oncetask {command}` without --app runs the built-in examples, and {exc}") from None
        raise UsageError(f"`oncetask {command}` without --app runs the built-in examples, which need {exc.name!r} "
                         "(the catalog example's dependencies: pip install ./examples/catalog from the oncetask "
                         "repository), or run your own app with --app module:attr") from None


def _log_view(args: argparse.Namespace, default_parts: tuple[str, ...] | None) -> LogView | None:
    """Which parts' output to show (`--logs a,b`, `--logs all`, `--quiet`), printed where: stdout, or stderr when
    stdout is for JSON."""
    if getattr(args, "quiet", False):
        return None
    if args.logs is None:
        parts = default_parts
    elif args.logs.strip() in ("", "none"):
        return None
    elif args.logs.strip() == "all":
        parts = PARTS
    else:
        parts = tuple(part.strip() for part in args.logs.split(",") if part.strip())
        unknown = [part for part in parts if part not in PARTS]
        if unknown:
            raise UsageError(f"--logs: no part {', '.join(map(repr, unknown))}; the parts are {', '.join(PARTS)} "
                             "(or all, none)")
    if parts is None or not parts:
        return None
    return LogView(ERR if getattr(args, "json", False) else OUT, parts, raw=getattr(args, "raw_logs", False),
                   width=max(map(len, PARTS)))


def cmd_dev(args: argparse.Namespace) -> int:
    view = _log_view(args, default_parts=None if args.json else PARTS)  # --json: for scripts, logs if asked
    reference, app = _app("dev", args.app, DEFAULT_APP)
    _require("dev", STACK_MODULES)
    given = {"api": args.api_port, "task_handler": args.task_handler_port, "cleanup": args.cleanup_port,
             "firestore": args.firestore_port, "tasks": args.tasks_port, "storage": args.storage_port}
    ports = {**DEV_PORTS, **{part: port for part, port in given.items() if port is not None}}
    options = StackOptions(app=reference, ports={k: v for k, v in ports.items() if v}, data_dir=args.data_dir,
                           time_scale=args.time_scale, handler_workers=args.handler_workers,
                           cleanup_interval=args.cleanup_interval,
                           log_file=logfile.default_path(stackfile.path()))
    stack = LocalStack(options, on_death=_report_death, on_output=view)
    with _signals_stop():
        try:
            if not args.json:
                OUT.print(f"starting the local stack for [bold]{escape(reference)}[/] ({_job_types(app)})"
                          + (f", state in {args.data_dir}" if args.data_dir else
                             ", ephemeral (--data-dir keeps state)") + "…", highlight=False)
            stack.start()
            _serve_until_stopped(stack, args.json)
        finally:
            stack.stop()
            _report_stopped(stack, quiet=args.json)
    return 1 if stack.deaths else 0


def _job_types(app: App) -> str:
    names = sorted(app.job_types())
    return f"job type{'s' if len(names) != 1 else ''} {', '.join(names)}" if names else "no job types"


def cmd_demo(args: argparse.Namespace) -> int:
    if args.copies < 1:
        raise UsageError(f"--copies must be at least 1, got {args.copies}")
    _require_demo_app("demo")
    _require("demo", STACK_MODULES)
    from .demo import DEMO_TIME_SCALE, Target, run_demo  # noqa: PLC0415 - it needs Pillow and openpyxl

    view = _log_view(args, default_parts=None)  # the demo's own display; the parts' output if asked
    if args.api:
        running = stackfile.read()
        if running is None or running["api_url"].rstrip("/") != args.api.rstrip("/"):
            raise UsageError("the demo uploads its inputs to the stack's bucket and reads its counters: give the "
                             "--api of an `oncetask dev` started in this directory, or no --api to start its own")
        status = run_demo(Target(args.api, running, own_stack=False), OUT, copies=args.copies)
        OUT.print(f"Status page: {args.api}")
        return status
    # Its own stack: fast backoffs, and no scheduler tick during the run (the counters must be the demo's alone).
    options = StackOptions(app=DEFAULT_APP, time_scale=DEMO_TIME_SCALE, cleanup_interval=3600.0)
    stack = LocalStack(options, on_death=_report_death, on_output=view)
    status = 1  # unless the demo runs to its end
    with _signals_stop():
        try:
            OUT.print("starting a local stack for the demo…")
            stack.start()
            OUT.print(stack_table(stack))
            status = run_demo(Target(stack.api_url, stack.describe(), own_stack=True), OUT, copies=args.copies)
            if stack.deaths:
                status = 1
            if args.keep:
                _serve_until_stopped(stack, json_out=False)
            else:
                OUT.print("The stack stops now; `oncetask demo --keep` leaves it running to look at the status page.")
        finally:
            stack.stop()
            _report_stopped(stack, quiet=True)
    return status


# The app itself ------------------------------------------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> int:
    """Load the app and check every definition, as the functions do when they start."""
    reference, app = _app("check", args.app, None)
    manifest = app.manifest()

    def render(m: dict[str, Any]) -> None:
        table = Table(title=f"{reference}: {len(m['job_types'])} job type(s), queue {m['queues'][0]['name']}",
                      title_justify="left", box=box.SIMPLE_HEAD)
        for column in ("job type", "stages", "attempts", "stage timeout"):
            table.add_column(column, overflow="fold")
        settings = app.settings  # what a job type leaves to the deployment, as this environment sets it
        for job_type in m["job_types"]:
            attempts, timeout = job_type["max_attempts"], job_type["stage_timeout_seconds"]
            table.add_row(job_type["name"], " → ".join(job_type["stages"]),
                          str(attempts) if attempts is not None else f"{settings.max_attempts} (setting)",
                          f"{timeout:g} s" if timeout is not None else
                          f"{settings.effective_stage_timeout_seconds:g} s (setting)")
        OUT.print(table)
        OUT.print("[green]ok[/]: every definition checks")

    _emit(args, manifest, render)
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from .bundle import write_bundle  # noqa: PLC0415 - only this command needs packaging

    project = Path(args.project) if args.project else Path.cwd()
    bundle = write_bundle(project, Path(args.out), args.app)
    data = {"out": str(bundle.out), "app": bundle.app, "packages": list(bundle.packages),
            "requirements": list(bundle.requirements), "job_types": list(bundle.job_types)}
    _emit(args, data, lambda d: OUT.print(
        f"bundle of [bold]{d['app']}[/] in {d['out']}: main.py, oncetask/ (vendored), "
        f"{', '.join(p + '/' if (bundle.out / p).is_dir() else p for p in d['packages'])}, requirements.txt "
        f"({len(d['requirements'])} requirements), oncetask.json ({len(d['job_types'])} job types)",
        highlight=False))
    return 0


# Parsing -------------------------------------------------------------------------------------------------------

EXAMPLES = """examples:
  oncetask demo                                   # the whole product, locally, in under a minute
  oncetask dev --app myproject.jobs:app           # your app with the emulators, until Ctrl-C
  oncetask dev --data-dir .oncetask/data --logs api,task_handler
  oncetask check --app myproject.jobs:app         # every definition checked, as at a deployment's start
  oncetask bundle --app myproject.jobs:app --out build/functions   # the source to deploy
  oncetask submit noop --payload '{"note": "hi"}' --key first --wait 10
  oncetask list --state failed
  oncetask stats                                  # queues, states, dead letters, durations
  oncetask logs JOB_ID                            # one job's lines from the running `oncetask dev`
  oncetask retry JOB_ID
"""

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oncetask", description=__doc__, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", help="the API's URL (default: $ONCETASK_API_URL, or the running `oncetask dev`)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    app_help = ("the app, as module:attribute (default: [tool.oncetask] app in ./pyproject.toml, else the "
                f"built-in examples {DEFAULT_APP})")
    logs_help = f"show these parts' output, comma-separated, or all or none (parts: {', '.join(PARTS)})"

    dev = sub.add_parser("dev", help="run your app locally with the emulators until Ctrl-C")
    dev.add_argument("--app", help=app_help)
    shown = dev.add_mutually_exclusive_group()
    shown.add_argument("--logs", metavar="PARTS", help=logs_help + " (default: all; none with --json)")
    shown.add_argument("--quiet", action="store_true", help="show no part's output")
    dev.add_argument("--raw-logs", action="store_true", help="show JSON log lines as written, not compacted")
    dev.add_argument("--data-dir", type=Path, help="keep state across restarts here (default: ephemeral)")
    dev.add_argument("--time-scale", type=float, default=1.0, help="Cloud Tasks backoffs x F (e.g. 0.01)")
    dev.add_argument("--api-port", type=int, help=f"default {DEV_PORTS['api']}; 0 picks a free port")
    dev.add_argument("--task-handler-port", type=int, help=f"default {DEV_PORTS['task_handler']}")
    dev.add_argument("--cleanup-port", type=int, help=f"default {DEV_PORTS['cleanup']}")
    dev.add_argument("--firestore-port", type=int, help="gRPC port of the Firestore emulator (default: free)")
    dev.add_argument("--tasks-port", type=int, help="gRPC port of the Cloud Tasks emulator (default: free)")
    dev.add_argument("--storage-port", type=int, help="port of the Storage emulator (default: free)")
    dev.add_argument("--handler-workers", type=int, default=2, help="task handler worker processes")
    dev.add_argument("--cleanup-interval", type=float, default=60.0,
                     help="seconds between cleanup runs (production: 900)")
    dev.add_argument("--json", action="store_true", help="print what runs where as one JSON line")
    dev.set_defaults(func=cmd_dev)

    demo = sub.add_parser("demo", help="show the product doing its job, locally (under a minute)")
    demo.add_argument("--api", help="use this running `oncetask dev` instead of starting a stack")
    demo.add_argument("--copies", type=int, default=4, help="concurrent submissions of each job")
    demo.add_argument("--keep", action="store_true", help="keep the stack running afterwards (status page)")
    demo.add_argument("--logs", metavar="PARTS", help=logs_help + " (default: none)")
    demo.add_argument("--raw-logs", action="store_true", help="show JSON log lines as written, not compacted")
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser("check", help="load the app and check every job definition")
    check.add_argument("--app", help="the app, as module:attribute (default: [tool.oncetask] app in "
                                     "./pyproject.toml)")
    check.add_argument("--json", action="store_true", help="print the app's manifest (queue and job types)")
    check.set_defaults(func=cmd_check)

    bundle = sub.add_parser("bundle", help="write the app's Cloud Run functions source (main.py, requirements.txt, "
                                           "oncetask/, your packages, oncetask.json)")
    bundle.add_argument("--app", help="the app, as module:attribute (default: [tool.oncetask] app in the "
                                      "project's pyproject.toml)")
    bundle.add_argument("--project", help="the project's directory, with its pyproject.toml (default: .)")
    bundle.add_argument("--out", required=True, help="the directory to write (new, empty, or an earlier bundle)")
    bundle.add_argument("--json", action="store_true", help="print what was written as JSON")
    bundle.set_defaults(func=cmd_bundle)

    submit = sub.add_parser("submit", parents=[common], help="submit a job")
    submit.add_argument("job_type", help="the job type's name, as the app defines it (the API's /openapi.json lists "
                                          "them)")
    submit.add_argument("--payload", default="{}", help="the payload as a JSON object")
    submit.add_argument("--key", help="idempotency key: the same key returns the same job")
    submit.add_argument("--wait", type=float, metavar="SECONDS", help="wait until the job finishes; exit status 1 unless it completed")
    submit.set_defaults(func=cmd_submit)

    status = sub.add_parser("status", parents=[common], help="show one job")
    status.add_argument("job_id")
    status.set_defaults(func=cmd_status)

    listing = sub.add_parser("list", parents=[common], help="list recent jobs")
    listing.add_argument("--state", help="only jobs in this state")
    listing.add_argument("--type", help="only jobs of this job type")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--cursor", help="the next_cursor of the previous page")
    listing.set_defaults(func=cmd_list)

    stats = sub.add_parser("stats", parents=[common], help="what the system is doing: jobs per state and type, "
                                                           "queues, dead letters, durations")
    stats.set_defaults(func=cmd_stats)

    for name, func, text in (("retry", cmd_retry, "re-run a failed job from its failed stage"),
                             ("cancel", cmd_cancel, "cancel a waiting or running job")):
        command = sub.add_parser(name, parents=[common], help=text)
        command.add_argument("job_id")
        command.set_defaults(func=func)

    logs = sub.add_parser("logs", parents=[common], help="one job's log lines (or all) from the running "
                                                         "`oncetask dev`")
    logs.add_argument("job_id", nargs="?", help="only lines about this job (default: every line)")
    logs.add_argument("--trace", action="store_true", help="every line of the job's trace: its children and "
                                                            "follow-up jobs too")
    logs.add_argument("--part", metavar="PARTS", help=f"only these parts, comma-separated ({', '.join(PARTS)})")
    logs.add_argument("--follow", "-f", action="store_true", help="keep showing new lines until Ctrl-C")
    logs.add_argument("--raw-logs", action="store_true", help="show JSON log lines as written, not compacted")
    logs.add_argument("--file", help="read this log file (default: the running stack's, else the last run's)")
    logs.set_defaults(func=cmd_logs)

    cleanup = sub.add_parser("cleanup", parents=[common], help="run the stale-lease cleanup now (local stack)")
    cleanup.add_argument("--wait", type=float, default=30.0, help="seconds to wait for it to run")
    cleanup.set_defaults(func=cmd_cleanup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    json_out = getattr(args, "json", False)
    try:
        return int(args.func(args))
    except ApiError as error:
        if json_out:
            print(json.dumps({"error": {"status": error.status, "code": error.code, "message": error.message,
                                        "field": error.field}}, indent=2))
        else:
            ERR.print(f"[red]error[/]: {escape(str(error))}")
        return 1
    except (UsageError, StackError, AppError) as error:
        ERR.print(f"[red]error[/]: {escape(str(error))}", highlight=False, soft_wrap=True)
        return 2
    except ModuleNotFoundError as error:  # a command's dependency that is not installed: what to install
        ERR.print("[red]error[/]: " + escape(f"`oncetask {args.command}` needs {error.name!r}, not installed "
                                             f"here: {INSTALL_DEV}"), highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
