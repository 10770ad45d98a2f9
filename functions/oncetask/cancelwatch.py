"""Prompt cancel: one Firestore listener per task handler process tells the lease holders of a cancel at once.

Without it, a worker learns of a cancel when its heartbeat's renewal write is refused, up to a heartbeat interval
(lease_ttl/3, 40 s by default) after the request. With it, the process listens to one query, *running jobs whose
cancel was asked* (`jobstore.listen_cancel_requests`), while it runs jobs, and a snapshot that names a job a lease
keeper here holds sets that keeper's cancel flag: the stage's next `ctx.check()` raises `Cancelled`, within about
a second of the request (`bench/prompt_cancel.py` measures it).

Why one query listener per process, and not one listener per job or a read per second (see the bench for figures):
- A job that is never cancelled costs nothing: it never enters the query's result set. A listener on each job's
  document would be charged a read for every write the worker itself makes (each heartbeat, each checkpoint) plus
  one to start, for every delivery; polling the document once a second costs 60 reads per job-minute.
- A cancel costs each listening process about two reads (the job enters the result set, then leaves it when it
  ends), plus one read when a process starts listening. The listener closes after `linger_seconds` without a job to
  watch (an idle instance holds no stream), and opens again with the next job.
- If the listener cannot be opened or dies, nothing is lost: the heartbeat still finds the cancel, as before.

The keeper accepts a notice only for its own lease (same fencing token and owner), so a stale snapshot can never
cancel a later holder's run; the cancel itself is still written by the holder's fenced write (`leasekeeper.py`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from google.api_core import bidi

from .jobstore import JobStore
from .logs import get_logger, log

LOG = get_logger("cancelwatch")
Notice = Callable[[int, "str | None"], None]  # (fencing, lease_owner) of a job whose cancel was asked
LINGER_SECONDS = 30.0
# Firestore's client reopens a listener's stream at once after every recoverable error (its own code says "we do not
# currently do any sort of backoff here"): against a Firestore this process cannot reach, that is a busy loop of new
# streams and threads (1,630 attempts in 3 s, measured through a gate that refuses Listen). One reopen per window.
RECONNECT_WINDOW_SECONDS = 5.0


class CancelWatch:
    def __init__(self, store: JobStore, linger_seconds: float = LINGER_SECONDS) -> None:
        self.store = store
        self.linger_seconds = linger_seconds
        self._lock = threading.Lock()
        self._watchers: dict[str, list[Notice]] = {}  # job id -> the keepers here that hold it
        self._requested: dict[str, tuple[int, str | None]] = {}  # the last snapshot: job id -> (fencing, owner)
        self._listener: Any = None  # the client's Watch
        self._idle: threading.Timer | None = None
        self._generation = 0  # of the listener: snapshots of one closed since are ignored
        self._initial = True  # the next snapshot is a new listener's first (its whole result set is billed)
        self._failed_once = False
        # What it cost: listens opened, snapshots received, documents they carried (each a billed read).
        self.listens = 0
        self.snapshots = 0
        self.reads = 0

    def register(self, job_id: str, notice: Notice) -> Callable[[], None]:
        """Tell `notice` when a cancel of `job_id` is seen (at once if one is already known); returns the call that
        stops telling it."""
        with self._lock:
            self._watchers.setdefault(job_id, []).append(notice)
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            self._listen()
            known = self._requested.get(job_id)
        if known is not None:
            notice(*known)
        return lambda: self._unregister(job_id, notice)

    def close(self) -> None:
        with self._lock:
            self._watchers.clear()
            self._close_listener()

    @property
    def listening(self) -> bool:
        with self._lock:
            return self._alive()

    # Inside -----------------------------------------------------------------------------------------------------

    def _unregister(self, job_id: str, notice: Notice) -> None:
        with self._lock:
            notices = self._watchers.get(job_id, [])
            if notice in notices:
                notices.remove(notice)
            if not notices:
                self._watchers.pop(job_id, None)
            if not self._watchers and self._listener is not None and self._idle is None:
                self._idle = threading.Timer(self.linger_seconds, self._close_if_idle)
                self._idle.daemon = True
                self._idle.start()

    def _close_if_idle(self) -> None:
        with self._lock:
            self._idle = None
            if not self._watchers:  # a job may have arrived while the timer waited (or was frozen, on Cloud Run)
                self._close_listener()

    def _alive(self) -> bool:
        # Not `listener.is_active`: it waits for the stream's lock, which a throttled reopen holds for seconds.
        listener = self._listener
        return listener is not None and not getattr(listener, "_closed", False)

    def _listen(self) -> None:
        """Open the listener unless it runs (called under the lock). A failure is logged once; the heartbeat still
        finds cancels, so the job goes on."""
        if self._alive():
            return
        self._close_listener()
        self._generation += 1
        self._initial = True
        generation = self._generation
        try:
            self._listener = self.store.listen_cancel_requests(
                lambda documents, changes, read_time: self._on_snapshot(generation, documents, changes))
            _bound_reconnects(self._listener)
            self.listens += 1
        except Exception as exc:  # noqa: BLE001 - prompt cancel is an optimisation; the heartbeat is the guarantee
            self._listener = None
            if not self._failed_once:
                self._failed_once = True
                log(LOG, logging.WARNING, "cannot listen for cancels; a cancel waits for the next heartbeat",
                    error=str(exc))

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        self._requested = {}
        if listener is not None:
            # On its own thread: closing waits for the stream's lock, which a throttled reopen may hold for seconds,
            # and nothing here needs to wait for it (snapshots of a closed listener are ignored by generation).
            threading.Thread(target=_unsubscribe, args=(listener,), name="oncetask-cancel-unlisten",
                             daemon=True).start()

    def _on_snapshot(self, generation: int, documents: list[Any], changes: list[Any]) -> None:
        """On the listener's thread: every running job whose cancel is asked, as of this snapshot."""
        try:
            requested = {doc.id: (int(data.get("fencing") or 0), data.get("lease_owner"))
                         for doc in documents for data in (doc.to_dict() or {},)}
            with self._lock:
                if generation != self._generation:
                    return  # a listener closed since
                self.snapshots += 1
                # Billing: a listener's first result set is read whole (at least one read), then one read per
                # document that enters, changes in or leaves it.
                self.reads += max(1, len(documents)) if self._initial else len(changes)
                self._initial = False
                self._requested = requested
                due = [(notice, requested[job_id]) for job_id in requested
                       for notice in self._watchers.get(job_id, ())]
            for notice, (fencing, owner) in due:
                notice(fencing, owner)
        except Exception as exc:  # noqa: BLE001 - never let a bad snapshot end the listener's thread
            log(LOG, logging.WARNING, "a cancel snapshot could not be read", error=str(exc))


def _unsubscribe(listener: Any) -> None:
    try:
        listener.unsubscribe()
    except Exception:  # noqa: BLE001 - closing a stream that already ended
        pass


def _bound_reconnects(listener: Any) -> None:
    """Let the listener's stream reopen at most once per RECONNECT_WINDOW_SECONDS (see there). The client offers no
    option for it, so this sets the throttle its own resumable stream supports; if a later client version lays its
    listener out otherwise, nothing is set and the listener behaves as the client made it."""
    rpc = getattr(listener, "_rpc", None)
    if rpc is not None and hasattr(rpc, "_reopen_throttle") and hasattr(bidi, "_Throttle"):
        rpc._reopen_throttle = bidi._Throttle(access_limit=1,  # noqa: SLF001
                                              time_window=timedelta(seconds=RECONNECT_WINDOW_SECONDS))
