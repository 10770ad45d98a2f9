"""Start an emulator (or any server that prints a ready line) as a child process and wait until it serves.

Every emulator prints exactly one line on stdout when it is ready, of the form

    <name> ready grpc=127.0.0.1:8080 http=127.0.0.1:8081

(`key=host:port` tokens, as many as it serves). With `--port 0` an emulator binds a free port and reports it
here, so callers never race each other for ports. Test fixtures, the local stack and the benchmarks all start
emulators through `launch`.
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class LaunchError(RuntimeError):
    """The child exited or stayed silent before printing its ready line."""


@dataclass
class ChildProcess:
    name: str
    proc: subprocess.Popen
    endpoints: dict[str, str]
    output: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200))
    drained: threading.Event = field(default_factory=threading.Event)  # set when its output reached EOF

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: the crash a `--data-dir` must survive."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self) -> str:
        return "\n".join(self.output)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_ready_line(line: str) -> dict[str, str] | None:
    """`name ready grpc=h:p http=h:p` -> {"grpc": "h:p", "http": "h:p"}; None if `line` is not a ready line."""
    words = line.split()
    if len(words) < 2 or words[1] != "ready":
        return None
    return dict(w.split("=", 1) for w in words[2:] if "=" in w)


def spawn(
    argv: list[str],
    *,
    name: str,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    on_line: Callable[[ChildProcess, str], None] | None = None,
) -> ChildProcess:
    """Start `argv` in its own process group and keep draining its output (kept in `.output`, each line also
    given to `on_line`), so a chatty child never blocks on a full pipe. `.drained` is set at its EOF."""
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        start_new_session=True,  # a Ctrl-C in the terminal reaches the parent, which stops children in order
    )
    child = ChildProcess(name=name, proc=proc, endpoints={})

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            child.output.append(line)
            if on_line is not None:
                on_line(child, line)
        child.drained.set()

    threading.Thread(target=drain, name=f"{name}-output", daemon=True).start()
    return child


def launch(
    argv: list[str],
    *,
    name: str,
    env: dict[str, str] | None = None,
    timeout: float = 15.0,
    cwd: str | None = None,
) -> ChildProcess:
    """Run `argv` and wait for its ready line; `LaunchError` (with its last output) if it exits or stays silent."""
    ready = threading.Event()

    def watch(child: ChildProcess, line: str) -> None:
        endpoints = None if ready.is_set() else parse_ready_line(line)
        if endpoints is not None:
            child.endpoints = endpoints
            ready.set()

    child = spawn(argv, name=name, env=env, cwd=cwd, on_line=watch)
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05) and not child.drained.is_set():
        if time.monotonic() > deadline:
            child.kill()
            raise LaunchError(f"{name} printed no ready line within {timeout}s:\n{child.tail()}")
    if not child.endpoints:
        child.stop()
        raise LaunchError(f"{name} exited with {child.proc.returncode} before it was ready:\n{child.tail()}")
    return child


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args...` with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", module, *args]
