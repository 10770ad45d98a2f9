"""The whole system on one machine: three emulators, the three functions, and a scheduler loop.

    with LocalStack(StackOptions(time_scale=0.01)) as stack:
        stack.api_url, stack.firestore_host, stack.tasks_host, stack.storage_host, ...
        stack.kill("task_handler"); stack.restart("firestore")   # hooks for fault tests

Every part is a child process in its own process group (the functions run under gunicorn with WORKERS worker
processes, as Cloud Run would scale them); `stop()` ends every group and waits until no process of it is left.
If this process dies without stopping them (kill -9), a small reaper process (`reaper.py`) ends them instead.
Every line a child writes (each emulator, each function's gunicorn master and workers) goes to `on_output(part,
line)` as it is written: `oncetask dev` prints them prefixed by part. A child that dies while the stack runs is
reported (name, exit code, last lines of its output) through `on_death`, never hidden. The functions get their settings as in production (ONCETASK_* variables), with the
emulator hosts and the Tasks emulator's JWKS as the OIDC certificates URL.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timezone
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api_core import exceptions as gexc

from oncetask import App, load_app
from oncetask.clients import tasks_client
from oncetask.settings import Settings
from oncetask_emulators.process import ChildProcess, LaunchError, free_port, python_module

from .children import LOOPBACK, OnLine, answers_http, group_alive, kill_group, launch, serve, stop_group
from .localclients import storage_api
from .logfile import LogFile
from .provision import create_queues, ensure_queue, job_queues
from .scheduler import SCHEDULER_QUEUE, CronLoop, SchedulerLoop, schedule_task, scheduler_queue, trigger_cleanup

LOG = logging.getLogger("oncetask_dev.stack")

DEFAULT_APP = "oncetask_dev.demoapp:app"
ENTRY_MODULE = """# Written by the local stack: the entry points of {app}, as a project's main.py exposes them.
from oncetask import load_app

api, process_task, cleanup_stale_locks = load_app({app!r}).entry_points()
"""
EMULATORS = ("firestore", "tasks", "storage")
FUNCTIONS = {"api": "api", "task_handler": "process_task", "cleanup": "cleanup_stale_locks"}
PARTS = (*EMULATORS, *FUNCTIONS)


class StackError(RuntimeError):
    """A part of the stack could not start, or was asked for something it does not have."""


@dataclass(frozen=True)
class ChildDied:
    name: str
    exit_code: int | None
    tail: str

    def __str__(self) -> str:
        return f"{self.name} exited with code {self.exit_code}; its last output:\n{self.tail or '(none)'}"


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    app: str = DEFAULT_APP  # the App the functions serve, as module:attribute
    # 0: a free port. Given ports are kept across restart(), so the other parts still find the restarted one.
    ports: dict[str, int] = field(default_factory=dict)
    data_dir: Path | None = None  # None: everything is ephemeral
    time_scale: float = 1.0  # the Tasks emulator's: backoffs and schedule delays are multiplied by it
    handler_workers: int = 2  # gunicorn worker processes of the task handler
    api_workers: int = 1
    cleanup_interval: float = 60.0  # seconds between scheduler ticks (production: 15 minutes)
    project_id: str = "oncetask-local"
    # Extra ONCETASK_* settings for the functions (e.g. {"ONCETASK_LEASE_TTL_SECONDS": "10"}).
    env: dict[str, str] = field(default_factory=dict)
    # Extra arguments for our emulators, kept across restart(): e.g. {"firestore": ("--fault", "ABORTED:0.1")},
    # {"storage": ("--fault", "UNAVAILABLE:0.05")}.
    emulator_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    start_timeout: float = 60.0
    # Every part's output is also written here (`logfile.py`), for `oncetask logs`; None: nowhere.
    log_file: Path | None = None

    def __post_init__(self) -> None:
        unknown = set(self.ports) - set(PARTS)
        if unknown:
            raise StackError(f"no such part(s) {sorted(unknown)}; the parts are {list(PARTS)}")
        if set(self.emulator_args) - set(EMULATORS):
            raise StackError(f"emulator_args is for {list(EMULATORS)}, not {sorted(self.emulator_args)}")
        if self.time_scale <= 0:
            raise StackError(f"time_scale must be positive, got {self.time_scale}")
        if self.handler_workers < 1 or self.api_workers < 1:
            raise StackError("worker counts must be at least 1")
        if self.cleanup_interval <= 0:
            raise StackError(f"the cleanup interval must be positive, got {self.cleanup_interval}")


class LocalStack:
    def __init__(self, options: StackOptions | None = None,
                 on_death: Callable[[ChildDied], None] | None = None,
                 on_output: OnLine | None = None) -> None:
        self.options = options or StackOptions()
        self.on_death = on_death or (lambda died: LOG.error("%s", died))
        self.on_output = on_output  # every line of every child, as (part, line); called from reader threads
        self.children: dict[str, ChildProcess] = {}
        self.deaths: list[ChildDied] = []
        self._ports: dict[str, int] = dict(self.options.ports)
        self._expected_down: set[str] = set()  # stopped or killed on purpose: not a death to report
        self._lock = threading.RLock()
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._scheduler: SchedulerLoop | None = None
        self._cron: CronLoop | None = None
        self._endpoints: dict[str, dict[str, str]] = {}
        self._reaper: subprocess.Popen | None = None
        self._entry_dir: tempfile.TemporaryDirectory[str] | None = None
        self._app: App | None = None
        self._log_file: LogFile | None = None

    # Lifecycle ----------------------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every part, create the queues and the bucket, and return once every part answers."""
        self._check_ports()
        if self.options.log_file is not None:
            self._log_file = LogFile(self.options.log_file)
        self._app = load_app(self.options.app)
        self._app.validate()  # a wrong reference or definition: said here, before anything starts
        self._entry_dir = tempfile.TemporaryDirectory(prefix="oncetask-entry-")
        (Path(self._entry_dir.name) / "main.py").write_text(ENTRY_MODULE.format(app=self.options.app))
        # First, the reaper: if this process dies without stop() (kill -9), it ends the children we registered.
        self._reaper = subprocess.Popen(python_module("oncetask_dev.reaper"), stdin=subprocess.PIPE, text=True,
                                        stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            self._start_parts(EMULATORS)
            self._provision()
            self._start_parts(tuple(FUNCTIONS))
        except LaunchError as error:
            self.stop()
            raise StackError(str(error)) from error
        except BaseException:
            self.stop()  # Ctrl-C while starting, or a queue that could not be made: nothing may stay behind
            raise
        self._scheduler = SchedulerLoop(self.trigger_cleanup, self.options.cleanup_interval,
                                        on_error=lambda exc: LOG.warning("scheduler tick failed: %s", exc))
        self._scheduler.start()
        self._cron = CronLoop(self.manifest().get("schedules", []), lambda name, at: self.fire_schedule(name, at),
                              on_error=lambda exc: LOG.warning("schedule run failed: %s", exc))
        self._cron.start()
        self._watcher = threading.Thread(target=self._watch, name="stack-watch", daemon=True)
        self._watcher.start()

    def _start_parts(self, names: tuple[str, ...]) -> None:
        """Start `names` in parallel; every one that started is adopted (so stop() ends it) before the first
        failure, if any, is raised."""
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            futures = {name: pool.submit(self._start_part, name) for name in names}
        failures = []
        for name, future in futures.items():
            if future.exception() is None:
                self._adopt(name, future.result())
            else:
                failures.append(future.exception())
        if failures:
            raise failures[0]  # type: ignore[misc]

    def _check_ports(self) -> None:
        """Refuse at once a given port that is taken (gunicorn would retry binding it for seconds, then fail)."""
        for name, port in self.options.ports.items():
            if port and not port_free(self.options.host, port):
                raise StackError(f"port {port} for {name} is in use on {self.options.host}: stop what uses it, or "
                                 f"give {name} another port (0 picks a free one)")

    def stop(self) -> None:
        """Stop the scheduler and every child (functions first, then the emulators they use); idempotent."""
        self._watch_stop.set()
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._cron is not None:
            self._cron.stop()
        with self._lock:
            self._expected_down.update(self.children)
            names = [n for n in (*FUNCTIONS, *EMULATORS) if n in self.children]
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda n: stop_group(self.children[n]), [n for n in names if n in FUNCTIONS]))
            list(pool.map(lambda n: stop_group(self.children[n]), [n for n in names if n in EMULATORS]))
        if self._reaper is not None:
            if self._reaper.stdin is not None:
                self._reaper.stdin.close()  # its EOF: it finds nothing left alive and exits
            self._reaper.wait(timeout=10)
            self._reaper = None
        if self._entry_dir is not None:
            self._entry_dir.cleanup()
            self._entry_dir = None
        if self._log_file is not None:
            self._log_file.close()

    def leftovers(self) -> list[str]:
        """Parts of which some process is still alive (after `stop()`: none, or something is wrong)."""
        return [name for name, child in self.children.items() if group_alive(child.proc.pid)]

    def kill(self, name: str) -> None:
        """SIGKILL one part's whole process group (a crash); it stays down until `restart(name)`."""
        child = self._child(name)
        with self._lock:
            self._expected_down.add(name)
        kill_group(child)
        self._tell_reaper(f"-{child.pid}")

    def restart(self, name: str) -> None:
        """Stop one part (if it runs) and start it again on the same port(s)."""
        child = self._child(name)
        with self._lock:
            self._expected_down.add(name)
        stop_group(child)
        self._tell_reaper(f"-{child.pid}")
        self._adopt(name, self._start_part(name))

    def _adopt(self, name: str, child: ChildProcess) -> None:
        with self._lock:
            self.children[name] = child
            self._endpoints[name] = child.endpoints
            self._expected_down.discard(name)
        self._tell_reaper(str(child.pid))

    def _tell_reaper(self, line: str) -> None:
        """Register (`PGID`) or unregister (`-PGID`) a process group with the reaper."""
        with self._lock:
            if self._reaper is None or self._reaper.stdin is None:
                return
            try:
                self._reaper.stdin.write(line + "\n")
                self._reaper.stdin.flush()
            except (BrokenPipeError, ValueError):
                LOG.warning("the reaper is gone: children would outlive a crash of this process")

    def _output(self, name: str, line: str) -> None:
        """Hand a child's line to the log file and `on_output`. It runs on the thread that drains the child's pipe: if
        it failed, that thread would end and the child block on a full pipe, so a failing consumer is dropped."""
        if self._log_file is not None:
            try:
                self._log_file.write(name, line)
            except OSError:
                LOG.exception("writing the stack's log file failed; it is no longer written")
                self._log_file = None
        if self.on_output is None:
            return
        try:
            self.on_output(name, line)
        except Exception:  # noqa: BLE001 - whatever it is, the children must keep running
            LOG.exception("showing the output of %s failed; the stack's output is no longer shown", name)
            self.on_output = None

    def _child(self, name: str) -> ChildProcess:
        if name not in self.children:
            raise StackError(f"no such part {name!r}; the parts are {list(PARTS)}")
        return self.children[name]

    def _watch(self) -> None:
        """Report any child that exits while nobody asked it to."""
        while not self._watch_stop.wait(0.2):
            with self._lock:
                dead = [(n, c) for n, c in self.children.items()
                        if n not in self._expected_down and c.proc.poll() is not None]
                for name, _ in dead:
                    self._expected_down.add(name)  # report each death once
            for name, child in dead:
                died = ChildDied(name, child.proc.returncode, "\n".join(list(child.output)[-15:]))
                self.deaths.append(died)
                self.on_death(died)

    # Starting the parts ---------------------------------------------------------------------------------------

    def _data_dir(self, name: str) -> str | None:
        if self.options.data_dir is None:
            return None
        path = Path(self.options.data_dir, name)
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def _start_part(self, name: str) -> ChildProcess:
        host = self.options.host
        timeout = self.options.start_timeout
        if name == "firestore":
            args = ["--host", host, "--port", str(self._ports.get("firestore", 0)), "--http-port", "0"]
            if (data := self._data_dir("firestore")) is not None:
                args += ["--data-dir", data]
            args += self.options.emulator_args.get("firestore", ())
            child = launch(python_module("oncetask_emulators.firestore", *args), name=name, timeout=timeout,
                           on_line=self._output)
            self._ports["firestore"] = _port(child.endpoints["grpc"])  # the same port after a restart
            return child
        if name == "tasks":
            args = ["--host", host, "--port", str(self._ports.get("tasks", 0)), "--http-port",
                    str(self._ports.get("tasks_http", 0)), "--time-scale", str(self.options.time_scale)]
            if (data := self._data_dir("tasks")) is not None:
                args += ["--data-dir", data]
            args += self.options.emulator_args.get("tasks", ())
            child = launch(python_module("oncetask_emulators.tasks", *args), name=name, timeout=timeout,
                           on_line=self._output)
            self._ports["tasks"] = _port(child.endpoints["grpc"])
            self._ports["tasks_http"] = _port(child.endpoints["http"])
            return child
        if name == "storage":
            args = ["--host", host, "--port", str(self._ports.get("storage", 0))]
            if (data := self._data_dir("storage")) is not None:
                args += ["--data-dir", data]
            args += self.options.emulator_args.get("storage", ())
            child = launch(python_module("oncetask_emulators.storage", *args), name=name, timeout=timeout,
                           on_line=self._output)
            self._ports["storage"] = _port(child.endpoints["http"])  # the same port after a restart
            return child
        return self._serve_with_port(name)

    def _serve_with_port(self, name: str) -> ChildProcess:
        if name not in self._ports:
            self._ports[name] = free_port(self.options.host)
        try:
            return self._serve(name, self._ports[name])
        except LaunchError as error:
            raise StackError(str(error)) from error

    def _serve(self, name: str, port: int) -> ChildProcess:
        host = self.options.host
        url = f"http://{host}:{port}"
        timeout = self.options.start_timeout
        workers = self.options.handler_workers if name == "task_handler" else (
            self.options.api_workers if name == "api" else 1)
        assert self._entry_dir is not None, "start() writes the entry module first"
        main = Path(self._entry_dir.name) / "main.py"
        argv = [sys.executable, "-m", "functions_framework", "--source", str(main), "--target", FUNCTIONS[name],
                "--host", host, "--port", str(port)]
        probe = url + "/healthz" if name == "api" else url + "/"
        ok: Callable[[int], bool] = (lambda status: status == 200) if name == "api" else (lambda status: True)
        return serve(argv, name=name, ready=lambda: answers_http(probe, ok), endpoints={"http": f"{host}:{port}"},
                     env={**self.function_env(), "WORKERS": str(workers)}, timeout=timeout, cwd=os.getcwd(),
                     on_line=self._output)

    def _provision(self) -> None:
        """Every queue of the app's manifest (as the Terraform module creates them), the scheduler's, the bucket."""
        s = self.settings()
        client = tasks_client(s)
        create_queues(client, s, self.manifest())
        ensure_queue(client, s, scheduler_queue(s.project_id, s.location))
        try:
            storage_api(self.storage_host, s.project_id).create_bucket(s.bucket)
        except gexc.Conflict:
            pass  # kept from an earlier run (--data-dir)

    # What runs where --------------------------------------------------------------------------------------------

    def _url(self, name: str) -> str:
        return f"http://{self.options.host}:{self._ports[name]}/"

    @property
    def api_url(self) -> str:
        return self._url("api")

    @property
    def task_handler_url(self) -> str:
        return self._url("task_handler")

    @property
    def cleanup_url(self) -> str:
        return self._url("cleanup")

    @property
    def firestore_host(self) -> str:
        return f"{self.options.host}:{self._ports['firestore']}"

    @property
    def firestore_http(self) -> str:
        return self._endpoints["firestore"]["http"]

    @property
    def tasks_host(self) -> str:
        return f"{self.options.host}:{self._ports['tasks']}"

    @property
    def tasks_http(self) -> str:
        return f"{self.options.host}:{self._ports['tasks_http']}"

    @property
    def storage_host(self) -> str:
        """As STORAGE_EMULATOR_HOST wants it: with the scheme."""
        return f"http://{self.options.host}:{self._ports['storage']}"

    @property
    def certs_url(self) -> str:
        return f"http://{self.tasks_http}/oauth2/v3/certs"

    def function_env(self) -> dict[str, str]:
        """The environment of each function process: production's settings, pointed at the local parts."""
        env = {
            "ONCETASK_PROJECT_ID": self.options.project_id,
            "ONCETASK_TASK_HANDLER_URL": self.task_handler_url,
            "ONCETASK_CLEANUP_AUDIENCE": self.cleanup_url,
            "ONCETASK_OIDC_CERTS_URL": self.certs_url,
            # Local development: the API takes callers without a token (the CLI, the demo, the status page without
            # sign-in) as the shared development caller. Tokens that are sent are still verified. `env` may turn
            # it back on (with a Firebase project or a local issuer for the page's sign-in).
            "ONCETASK_API_REQUIRE_AUTH": "false",
            "FIRESTORE_EMULATOR_HOST": self.firestore_host,
            "CLOUD_TASKS_EMULATOR_HOST": self.tasks_host,
            "STORAGE_EMULATOR_HOST": self.storage_host,
            "PYTHONUNBUFFERED": "1",  # log lines reach us (and a death report) as they are written
            # The app's modules are found as from where the stack was started (a project not installed, too).
            "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH", "")) if p),
        }
        # Ports of functions not started yet are unknown: those URLs are only known once every port is chosen.
        return {**env, **self.options.env}

    def settings(self) -> Settings:
        """Settings for a client of this stack (the same values the functions get)."""
        for name in FUNCTIONS:
            self._ports.setdefault(name, free_port(self.options.host))  # fix the URLs before anyone uses them
        return settings_from_env(self.function_env())

    def tasks_stats(self) -> dict[str, Any]:
        with LOOPBACK.open(f"http://{self.tasks_http}/emulator/v1/stats", timeout=5) as response:
            return json.loads(response.read())

    def fire_schedule(self, name: str, at: datetime | None = None, wait: float | None = None) -> str:
        """What Cloud Scheduler does for one run of a schedule (default: now): a call to the cleanup function's
        /schedules/{name} with the scheduler's OIDC token and the run's time."""
        s = self.settings()
        queue = f"projects/{s.project_id}/locations/{s.location}/queues/{SCHEDULER_QUEUE}"
        task = schedule_task(self.cleanup_url, name, at or datetime.now(timezone.utc), s.cleanup_audience,
                             s.scheduler_service_account)
        return trigger_cleanup(tasks_client(s), queue, self.cleanup_url, s.cleanup_audience,
                               s.scheduler_service_account, wait, task=task)

    def trigger_cleanup(self, wait: float | None = None) -> str:
        """What the scheduler does each tick: a Cloud Task to the cleanup URL with the scheduler's OIDC token."""
        s = self.settings()
        queue = f"projects/{s.project_id}/locations/{s.location}/queues/{SCHEDULER_QUEUE}"
        return trigger_cleanup(tasks_client(s), queue, self.cleanup_url, s.cleanup_audience,
                               s.scheduler_service_account, wait)

    def pids(self) -> dict[str, int]:
        return {name: child.pid for name, child in self.children.items()}

    def manifest(self) -> dict[str, Any]:
        """The served app's manifest with the stack's settings (its queue names, attempts), as its bundle would
        carry it; computed on a copy, so the app object of this process keeps its own settings."""
        if self._app is None:
            self._app = load_app(self.options.app)
        app = self._app
        copy = App(app.name, lanes=tuple(app.lanes.values()), default_lane=app.default_lane).include(app)
        return copy.configure(self.settings()).manifest()

    def job_queues(self) -> list[str]:
        """The full names of every job queue of the served app (each lane, job type and shard)."""
        return job_queues(self.settings(), self.manifest())

    def lane_queue(self, lane: str | None = None) -> str:
        """The full name of a lane's shared queue (default: the app's default lane; its first shard)."""
        manifest = self.manifest()
        lane = lane or next(entry["name"] for entry in manifest["lanes"] if entry["default"])
        name = next(q["name"] for q in manifest["queues"]
                    if q.get("lane") == lane and q.get("job_type") is None and q.get("shard", 0) == 0)
        return self.settings().queue_path(name)

    def describe(self) -> dict[str, Any]:
        """What runs where, as JSON (the state file the CLI reads, and `--json` output)."""
        s = self.settings()
        return {
            "app": self.options.app,
            "api_url": self.api_url, "task_handler_url": self.task_handler_url, "cleanup_url": self.cleanup_url,
            "firestore_host": self.firestore_host, "tasks_host": self.tasks_host, "tasks_http": self.tasks_http,
            "storage_host": self.storage_host, "certs_url": self.certs_url, "project_id": s.project_id,
            "location": s.location, "queues": job_queues(s, self.manifest()), "bucket": s.bucket,
            "cleanup_audience": s.cleanup_audience,
            "scheduler_service_account": s.scheduler_service_account, "time_scale": self.options.time_scale,
            "cleanup_interval": self.options.cleanup_interval,
            "data_dir": str(self.options.data_dir) if self.options.data_dir else None,
            "log_file": str(self.options.log_file.resolve()) if self.options.log_file else None,
            "pid": os.getpid(), "children": self.pids(),
        }


def settings_from_env(env: dict[str, str]) -> Settings:
    """`Settings` from variables as a process would see them (ONCETASK_X=... becomes the field x), without
    touching this process's environment."""
    values: dict[str, str] = {}
    for key, value in env.items():
        if key.startswith("ONCETASK_") and key != "ONCETASK_PROJECT_ID":  # project_id is read by its alias
            values[key.removeprefix("ONCETASK_").lower()] = value
        elif key.isupper() and not key.startswith("PYTHON"):
            values[key] = value
    return Settings(**values)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        # As the servers bind: a port held only by closed connections (TIME_WAIT) is free to them too.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _port(host_port: str) -> int:
    return int(host_port.rsplit(":", 1)[1])


__all__ = ["ChildDied", "LocalStack", "StackError", "StackOptions", "settings_from_env"]
