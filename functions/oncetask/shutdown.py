"""Graceful shutdown: on SIGTERM (Cloud Run gives an instance about 10 s) a worker stops at its next `check()`,
keeps nothing of the stage it cut short, and releases its lease, so the task's retry takes the job over at once
instead of waiting for the lease to lapse.

Under gunicorn (how functions-framework serves in production) the app is loaded in the master and each worker
resets its signal handlers when it starts (`Worker.init_signals`, which each worker class's own `handle_exit`
then answers); so the hook wraps `init_signals` to chain its handler after the worker's own, rather than installing
one that the worker would replace. Without
gunicorn (a development server, a test), a plain handler on the main thread does the same, chained to the one
before it.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from .errors import OncetaskError

SHUTTING_DOWN = threading.Event()
_installed = False
_lock = threading.Lock()


class ShuttingDown(OncetaskError):
    """This instance is stopping: release the job so another worker takes it over now."""

    code = "SHUTTING_DOWN"


def install() -> None:
    """Make SIGTERM set `SHUTTING_DOWN` in this process and the workers it forks (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    try:
        from gunicorn.workers.base import Worker  # noqa: PLC0415 - only where gunicorn serves

        original = Worker.init_signals

        def init_signals(self: Any) -> None:
            original(self)
            _chain_sigterm()
            signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn had it: a SIGTERM must not break a request

        Worker.init_signals = init_signals  # type: ignore[method-assign]
    except ImportError:
        pass
    if threading.current_thread() is threading.main_thread():
        _chain_sigterm()


def _chain_sigterm() -> None:
    """Set `SHUTTING_DOWN` on SIGTERM, then do what the handler before ours did."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(sig: int, frame: FrameType | None) -> None:
        SHUTTING_DOWN.set()
        if callable(previous):
            previous(sig, frame)
        elif previous == signal.SIG_DFL:
            raise SystemExit(128 + sig)

    signal.signal(signal.SIGTERM, on_term)
