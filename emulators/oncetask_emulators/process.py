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
from dataclasses import dataclass, field


class LaunchError(RuntimeError):
    """The child exited or stayed silent before printing its ready line."""


@dataclass
class ChildProcess:
    name: str
    proc: subprocess.Popen
    endpoints: dict[str, str]
    output: collections.deque = field(default_factory=lambda: collections.deque(maxlen=200))

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


def launch(
    argv: list[str],
    *,
    name: str,
    env: dict[str, str] | None = None,
    timeout: float = 15.0,
    cwd: str | None = None,
) -> ChildProcess:
    """Run `argv`, wait for its ready line, and keep draining its output so it never blocks on a full pipe."""
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
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            child.output.append(line)
            if not ready.is_set():
                endpoints = parse_ready_line(line)
                if endpoints is not None:
                    child.endpoints = endpoints
                    ready.set()
        ready.set()  # EOF: let the waiter see the exit

    threading.Thread(target=drain, name=f"{name}-output", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.05):
        if time.monotonic() > deadline:
            child.kill()
            raise LaunchError(f"{name} printed no ready line within {timeout}s:\n{child.tail()}")
    if not child.endpoints:
        child.stop()
        raise LaunchError(f"{name} exited with {proc.returncode} before it was ready:\n{child.tail()}")
    return child


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args...` with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-m", module, *args]
