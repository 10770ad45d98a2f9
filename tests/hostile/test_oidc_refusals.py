"""The task handler and the cleanup target refuse every caller but the right service account (401 without a
valid token, 403 for a valid token of another identity), and a refused request touches nothing: not one
Firestore call is made for it.

Tokens are minted here with the Cloud Tasks emulator's own signing key (read from its data dir), so each test
bends exactly one thing of a token the emulator would have signed; forgeries use a key of our own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from google.auth import crypt
from google.auth import jwt as google_jwt

from oncetask.states import JobState

from .conftest import Footprint, KeyedTasksEmulator, Stack, b64_json, swap_payload

ISSUER = "https://accounts.google.com"
INTRUDER = "intruder@oncetask-local.iam.gserviceaccount.com"


def _claims(who: str, audience: str, **changes: Any) -> dict[str, Any]:
    """A token's claims as Cloud Tasks sets them for `who`; `changes` bends some (a None value drops it)."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "azp": who, "sub": "1234567890", "email": who,
              "email_verified": True, "iat": now, "exp": now + 3600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(signer: crypt.Signer, claims: dict[str, Any]) -> str:
    return "Bearer " + google_jwt.encode(signer, claims).decode()


@pytest.fixture
def keyed_stack(make_stack: Callable[..., Stack], keyed_tasks_emulator: KeyedTasksEmulator) -> Stack:
    """A stack (paused queue) whose handlers trust the keyed emulator's JWKS."""
    return make_stack(paused=True, oidc_certs_url=keyed_tasks_emulator.emulator.certs_url)


Forger = Callable[[KeyedTasksEmulator, bytes, str, str], str | None]

# (scenario, how to make the Authorization header from (keyed emulator, foreign key, right email, audience))
REFUSED: list[tuple[str, int, Forger]] = [
    ("no token", 401, lambda k, f, email, aud: None),
    ("not a bearer token", 401, lambda k, f, email, aud: "Basic dXNlcjpwYXNz"),
    ("bearer of garbage", 401, lambda k, f, email, aud: "Bearer not.a.jwt"),
    ("expired an hour ago", 401, lambda k, f, email, aud: _sign(k.signer, _claims(
        email, aud, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))),
    ("issued an hour in the future", 401, lambda k, f, email, aud: _sign(k.signer, _claims(
        email, aud, iat=int(time.time()) + 3600, exp=int(time.time()) + 7200))),
    ("without an expiry", 401, lambda k, f, email, aud: _sign(k.signer, _claims(email, aud, exp=None))),
    ("for another audience", 401, lambda k, f, email, aud: _sign(k.signer, _claims(email, "https://elsewhere/"))),
    ("of another service account", 403, lambda k, f, email, aud: _sign(k.signer, _claims(INTRUDER, aud))),
    ("with an unverified email", 403, lambda k, f, email, aud: _sign(k.signer, _claims(
        email, aud, email_verified=False))),
    ("without an email", 403, lambda k, f, email, aud: _sign(k.signer, _claims(email, aud, email=None))),
    ("signed by another key under the real key's id", 401, lambda k, f, email, aud: _sign(
        crypt.RSASigner.from_string(f, key_id=k.signer.key_id), _claims(email, aud))),
    ("signed by another key under an unknown id", 401, lambda k, f, email, aud: _sign(
        crypt.RSASigner.from_string(f, key_id="unknown-kid"), _claims(email, aud))),
    ("with alg none and no signature", 401, lambda k, f, email, aud: "Bearer " + b64_json(
        {"alg": "none", "typ": "JWT", "kid": k.signer.key_id}) + "." + b64_json(_claims(email, aud)) + "."),
    ("HS256 keyed with the public key", 401, lambda k, f, email, aud: _hs256(
        k.public_pem, {"alg": "HS256", "typ": "JWT", "kid": k.signer.key_id}, _claims(email, aud))),
    ("valid signature, payload swapped", 401, lambda k, f, email, aud: "Bearer " + swap_payload(
        _sign(k.signer, _claims(INTRUDER, aud))[len("Bearer "):], _claims(email, aud))),
]


def _hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """The classic algorithm confusion: an HMAC 'signed' with the verifier's public key as the secret."""
    signing_input = f"{b64_json(header)}.{b64_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"Bearer {signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _post_task(stack: Stack, job_id: str, authorization: str | None,
               extra: dict[str, str] | None = None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization else {}
    headers.update(extra or {})
    return requests.post(stack.settings.task_handler_url, json={"job_id": job_id, "generation": 1},
                         headers=headers, timeout=10)


@pytest.mark.parametrize(("scenario", "status", "forge"), REFUSED, ids=[r[0] for r in REFUSED])
def test_task_handler_refuses_the_token_and_touches_nothing(
        keyed_stack: Stack, keyed_tasks_emulator: KeyedTasksEmulator, foreign_pem: bytes,
        scenario: str, status: int, forge: Forger) -> None:
    s = keyed_stack.settings
    job_id = keyed_stack.submit_ok("noop", {}, key=f"oidc-{scenario}")
    before = keyed_stack.firestore_calls()
    answer = _post_task(keyed_stack, job_id, forge(keyed_tasks_emulator, foreign_pem,
                                                   s.tasks_service_account, s.effective_task_audience))
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == ("UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED")
    assert keyed_stack.firestore_calls() == before  # refused before any read, let alone a write
    job = keyed_stack.job(job_id)
    assert (job.state, job.attempts, job.checkpoints) == (JobState.QUEUED, 0, {})


@pytest.mark.parametrize(("scenario", "status", "forge"), REFUSED, ids=[r[0] for r in REFUSED])
def test_cleanup_refuses_the_token_and_runs_no_query(
        keyed_stack: Stack, keyed_tasks_emulator: KeyedTasksEmulator, foreign_pem: bytes,
        scenario: str, status: int, forge: Forger) -> None:
    s = keyed_stack.settings
    before = keyed_stack.firestore_calls()
    header = forge(keyed_tasks_emulator, foreign_pem, s.scheduler_service_account, s.cleanup_audience)
    answer = keyed_stack.cleanup(**({"Authorization": header} if header else {}))
    assert answer.status_code == status, answer.get_json()
    assert keyed_stack.firestore_calls() == before


FORGED_HEADERS = {
    "X-CloudTasks-TaskName": "projects/p/locations/l/queues/q/tasks/forged",
    "X-CloudTasks-QueueName": "oncetask-jobs",
    "X-CloudTasks-TaskRetryCount": "99",
    "X-CloudTasks-TaskExecutionCount": "99",
    "X-CloudTasks-TaskETA": "0",
    "User-Agent": "Google-Cloud-Tasks",
}


def test_cloud_tasks_headers_without_a_token_are_refused_and_nothing_runs(keyed_stack: Stack) -> None:
    job_id = keyed_stack.submit_ok("noop", {}, key="forged-headers")
    before = keyed_stack.firestore_calls()
    answer = _post_task(keyed_stack, job_id, None, FORGED_HEADERS)
    assert answer.status_code == 401
    assert keyed_stack.firestore_calls() == before
    assert keyed_stack.job(job_id).state is JobState.QUEUED


@pytest.mark.parametrize("value", ["-5", "abc", "9" * 400, "1e3", ""])
def test_garbage_cloud_tasks_headers_beside_the_right_token_do_not_break_the_run(
        keyed_stack: Stack, keyed_tasks_emulator: KeyedTasksEmulator, value: str) -> None:
    """The headers are only read once the token is verified; even then, garbage in them is a count of 0, and
    the job runs to completion."""
    s = keyed_stack.settings
    job_id = keyed_stack.submit_ok("noop", {}, key=f"garbage-{len(value)}-{value[:3]}")
    token = _sign(keyed_tasks_emulator.signer, _claims(s.tasks_service_account, s.effective_task_audience))
    headers = {"X-CloudTasks-TaskRetryCount": value, "X-CloudTasks-TaskExecutionCount": value}
    answer = _post_task(keyed_stack, job_id, token, headers)
    assert answer.status_code == 200, answer.text
    assert keyed_stack.job(job_id).state is JobState.COMPLETED


def test_the_same_minting_with_nothing_bent_is_accepted(
        keyed_stack: Stack, keyed_tasks_emulator: KeyedTasksEmulator) -> None:
    """The control: every refusal above comes from the one thing bent, not from a token the handler could
    never accept."""
    s = keyed_stack.settings
    job_id = keyed_stack.submit_ok("noop", {}, key="control")
    token = _sign(keyed_tasks_emulator.signer, _claims(s.tasks_service_account, s.effective_task_audience))
    answer = _post_task(keyed_stack, job_id, token)
    assert answer.status_code == 200 and answer.json()["outcome"] == "completed"
    cleanup_token = _sign(keyed_tasks_emulator.signer, _claims(s.scheduler_service_account, s.cleanup_audience))
    assert keyed_stack.cleanup(Authorization=cleanup_token).status_code == 200


API_AUDIENCE = "https://api.oncetask.test/"
UNAUTHENTICATED = [r for r in REFUSED if r[1] == 401]  # any verified identity may use the API: no 403 cases


@pytest.mark.parametrize(("scenario", "status", "forge"), UNAUTHENTICATED, ids=[r[0] for r in UNAUTHENTICATED])
def test_api_requiring_auth_refuses_the_token_and_writes_nothing(
        make_stack: Callable[..., Stack], keyed_tasks_emulator: KeyedTasksEmulator, foreign_pem: bytes,
        scenario: str, status: int, forge: Forger) -> None:
    stack = make_stack(paused=True, oidc_certs_url=keyed_tasks_emulator.emulator.certs_url, api_require_auth=True,
                       api_audience=API_AUDIENCE)
    header = forge(keyed_tasks_emulator, foreign_pem, "alice@example.com", API_AUDIENCE)
    before = Footprint.of(stack)
    answer = stack.api_client.post("/jobs", json={"job_type": "noop", "idempotency_key": "k"},
                                   headers={"Authorization": header} if header else {})
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer", answer.get_json()
    assert Footprint.of(stack) == before
    alice = _sign(keyed_tasks_emulator.signer, _claims("alice@example.com", API_AUDIENCE))
    assert stack.api_client.post("/jobs", json={"job_type": "noop"}, headers={"Authorization": alice}
                                 ).status_code == 202  # the control: the same stack takes the unbent token
