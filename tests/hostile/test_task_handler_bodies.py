"""The task handler, called with the right token but any body: never a 5xx (which Cloud Tasks would retry for
an hour), and nothing written for a body that names no job of ours."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import requests
from google.auth import jwt as google_jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import WRITE_CALLS, KeyedTasksEmulator, Stack

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
TASK_LIKE = st.fixed_dictionaries({}, optional={
    "job_id": JSON | st.text("0123456789abcdef", min_size=30, max_size=34) | st.just("A" * 32),
    "generation": JSON | st.integers(-(2**70), 2**70),
})
BODIES = (JSON | TASK_LIKE).map(lambda value: json.dumps(value).encode()) | st.binary(max_size=200)


@pytest.fixture
def authorized(make_stack: Callable[..., Stack], keyed_tasks_emulator: KeyedTasksEmulator) -> tuple[Stack, str]:
    """A stack trusting the keyed emulator, and the header Cloud Tasks would send to its handler."""
    stack = make_stack(paused=True, oidc_certs_url=keyed_tasks_emulator.emulator.certs_url)
    s = stack.settings
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": s.effective_task_audience, "sub": "1",
              "email": s.tasks_service_account, "email_verified": True, "iat": now, "exp": now + 3600}
    return stack, "Bearer " + google_jwt.encode(keyed_tasks_emulator.signer, claims).decode()


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=BODIES)
def test_any_body_with_the_right_token_gets_no_5xx_and_writes_nothing(authorized: tuple[Stack, str],
                                                                      body: bytes) -> None:
    stack, token = authorized
    before = stack.firestore_calls()
    answer = requests.post(stack.settings.task_handler_url, data=body, timeout=10,
                           headers={"Authorization": token, "Content-Type": "application/json"})
    assert answer.status_code in (200, 400, 413), answer.text
    if answer.status_code == 200:
        assert answer.json()["outcome"] == "not_found"  # a well-formed body naming no job of ours
    else:
        assert answer.json()["error"]["code"] in ("INVALID_TASK", "INVALID_JSON", "PAYLOAD_TOO_LARGE")
    after = stack.firestore_calls()
    assert all(after.get(name, 0) == before.get(name, 0) for name in WRITE_CALLS), (before, after)
