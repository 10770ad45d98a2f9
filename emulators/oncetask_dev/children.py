"""Child processes of the local stack: start each in its own process group, know when it serves, stop it whole.

The project's emulators print a ready line and are started with `launch()`. The functions (functions-framework
under gunicorn) print nothing we can rely on, so `serve()` starts them on a chosen port and polls an HTTP URL
until it answers. Every child is a process-group leader (`start_new_session`), so `stop_group()` reaches
gunicorn's workers too, not only its master. Both hand every line a child writes (all its processes share one
pipe) to `on_line`, which is how `oncetask dev` shows the functions' logs; the last lines are also kept in
`child.output` for a death report.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from oncetask_emulators.process import ChildProcess, LaunchError, parse_ready_line, spawn

from .reaper import alive as group_alive, signal_group

__all__ = ["LOOPBACK", "ChildProcess", "LaunchError", "OnLine", "answers_http", "group_alive", "kill_group", "launch",
           "serve", "stop_group"]

OnLine = Callable[[str, str], None]  # (part name, one line of its output)


# The stack's parts are on loopback: never ask a proxy from the environment to reach them.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def answers_http(url: str, ok: Callable[[int], bool] = lambda status: True, timeout: float = 1.0) -> bool:
    """Whether `url` gives an HTTP answer that `ok(status)` accepts (any status by default: it is serving)."""
    try:
        with LOOPBACK.open(url, timeout=timeout) as response:
            return ok(response.status)
    except urllib.error.HTTPError as error:
        return ok(error.code)
    except (OSError, ValueError):
        return False


def launch(argv: list[str], *, name: str, timeout: float = 15.0, on_line: OnLine | None = None) -> ChildProcess:
    """Run an emulator and wait for its ready line (`name ready grpc=h:p http=h:p`, which gives its endpoints);
    `LaunchError` (with its last output) if it exits or stays silent."""
    ready = threading.Event()

    def watch(child: ChildProcess, line: str) -> None:
        endpoints = None if ready.is_set() else parse_ready_line(line)
        if endpoints is not None:
            child.endpoints = endpoints
            ready.set()
        if on_line is not None:
            on_line(name, line)

    child = spawn(argv, name=name, on_line=watch)
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05) and not child.drained.is_set():
        if time.monotonic() > deadline:
            stop_group(child, timeout=1.0)
            raise LaunchError(f"{name} printed no ready line within {timeout}s:\n{child.tail()}")
    if not child.endpoints:
        stop_group(child, timeout=1.0)
        raise LaunchError(f"{name} exited with {child.proc.returncode} before it was ready:\n{child.tail()}")
    return child


def serve(
    argv: list[str],
    *,
    name: str,
    ready: Callable[[], bool],
    endpoints: dict[str, str],
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
    cwd: str | None = None,
    on_line: OnLine | None = None,
) -> ChildProcess:
    """Run `argv` and wait until `ready()` is true; `LaunchError` (with its last output) if it exits or times out."""
    child = spawn(argv, name=name, env=env, cwd=cwd,
                  on_line=None if on_line is None else (lambda _child, line: on_line(name, line)))
    child.endpoints = endpoints
    proc = child.proc
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            child.drained.wait(1.0)  # its last lines say why it died
            raise LaunchError(f"{name} exited with {proc.returncode} before it was ready:\n{child.tail()}")
        if time.monotonic() > deadline:
            stop_group(child, timeout=1.0)
            raise LaunchError(f"{name} did not answer within {timeout}s:\n{child.tail()}")
        time.sleep(0.05)
    return child


def stop_group(child: ChildProcess, timeout: float = 5.0) -> int | None:
    """SIGTERM the child's whole process group, SIGKILL what is left after `timeout`; the leader's exit code."""
    pgid = child.proc.pid  # a session leader's pid is its group's id
    signal_group(pgid, signal.SIGTERM)
    try:
        child.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        signal_group(pgid, signal.SIGKILL)
        child.proc.wait()
    # Workers may outlive their master by a moment (or forever, if it was SIGKILLed): wait, then make sure.
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    signal_group(pgid, signal.SIGKILL)
    return child.proc.returncode


def kill_group(child: ChildProcess) -> None:
    """SIGKILL the whole group at once: the crash a fault test wants."""
    signal_group(child.proc.pid, signal.SIGKILL)
    child.proc.wait()


