"""The fault suite's stack: the real local stack (three emulators, the three functions under gunicorn, the
scheduler loop), shared by the scenarios that do not need faults baked into an emulator's command line.

Time is compressed so that crashes heal in seconds: the Tasks emulator's backoffs run at 1/100 of real time, a
lease lasts 2 s, and the scheduler calls cleanup every second (so cleanup always runs during processing).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from oncetask_dev.stack import LocalStack, StackOptions

from .invariants import Observer

LEASE_TTL = 2.0
MAIN_ENV = {
    "ONCETASK_LEASE_TTL_SECONDS": str(LEASE_TTL),
    # A queued job untouched this long is checked for a lost task. Production waits 300 s; much less than the
    # slowest submission under a storm would let cleanup re-enqueue a job whose first task is still being made.
    "ONCETASK_ORPHAN_GRACE_SECONDS": "15",
    "ONCETASK_MAX_ATTEMPTS": "6",  # kills cost attempts: leave room for the job to finish after a few of them
}


# Dispatch deadlines at 1/100 too (6 s instead of 10 min): a request stuck on a frozen worker ends, as in production,
# only by its deadline; the emulator reuses keep-alive connections, so a retry can meet the frozen worker again.
TASKS_ARGS = ("--deadline-scale", "0.01")


def start_stack(data_dir: Path | None = None, **options: Any) -> LocalStack:
    values: dict[str, Any] = {"time_scale": 0.01, "handler_workers": 3, "api_workers": 2, "cleanup_interval": 1.0,
                              "data_dir": data_dir, "env": MAIN_ENV, "emulator_args": {"tasks": TASKS_ARGS}}
    stack = LocalStack(StackOptions(**{**values, **options}))
    stack.start()
    return stack


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The shared stack; with a data directory, so that its emulators can be restarted without losing data."""
    stack = start_stack(tmp_path_factory.mktemp("reliability-stack"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def observer(stack: LocalStack) -> Observer:
    return Observer(stack)


@pytest.fixture
def api(stack: LocalStack) -> Api:
    return Api(stack.api_url)


def unique(prefix: str) -> str:
    """Idempotency keys of one test, apart from every other test's on the shared stack."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Api:
    """The public API over HTTP, one connection pool per thread (requests sessions are not thread-safe)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._local = threading.local()
        self._lock = threading.Lock()
        self.resent = 0  # keyed submissions sent again after the connection dropped without an answer

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def post(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        response = self._session().post(self.base_url + path, json=body or {}, timeout=30)
        return response.status_code, response.json()

    def submit(self, key: str, **payload: Any) -> tuple[int, dict[str, Any]]:
        """One keyed submission. A connection the server closed before answering is sent again, as
        `oncetask.Client` does: HTTP/1.1 keep-alive has a race (the server closes an idle connection just as the
        client reuses it) that no server avoids, and a keyed submission is safe to repeat. Each resend is
        counted in `resent`: the lost attempt may have been the one that created the job."""
        body = {"job_type": "test.pipeline", "payload": {"record_runs": True, **payload}, "idempotency_key": key}
        try:
            return self.post("jobs", body)
        except requests.ConnectionError:
            with self._lock:
                self.resent += 1
            return self.post("jobs", body)

    def submit_ok(self, key: str, **payload: Any) -> str:
        status, body = self.submit(key, **payload)
        assert status == 202, body
        return str(body["job_id"])

    def submit_until_accepted(self, key: str, timeout: float = 30, **payload: Any) -> str:
        """What a well-behaved client does with a 503: send the same request (same idempotency key) again."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.submit(key, **payload)
            if status == 202:
                return str(body["job_id"])
            assert status == 503, (status, body)  # only "try again later" is acceptable when a backend is down
            assert time.monotonic() < deadline, f"submission {key} still refused after {timeout}s: {body}"
            time.sleep(0.1)  # a client's backoff before its retry

    def cancel(self, job_id: str) -> tuple[int, dict[str, Any]]:
        return self.post(f"jobs/{job_id}/cancel")

    def retry(self, job_id: str) -> tuple[int, dict[str, Any]]:
        return self.post(f"jobs/{job_id}/retry")
