"""The API refuses every token that bends one thing of a Firebase ID token (or passes one kind of token off as the
other) with 401, and writes nothing; the same token unbent is accepted. Verification is never relaxed: issuer,
audience, signature, exp, iat and auth_time, whatever the settings.

Tokens are minted with a local issuer's key (`token_issuer`, whose certificate the API is pointed at) and with the
Cloud Tasks emulator's key (`keyed_tasks_emulator`, the API's Google keys), so each case bends exactly one claim or
one key of a token that would otherwise be accepted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from google.auth import crypt

from fixtures.issuer import TokenIssuer

from .conftest import Footprint, KeyedTasksEmulator, Stack, b64_json, swap_payload

PROJECT = "demo-oncetask"
AUDIENCE = "https://api.oncetask.test/"
NOW = int(time.time())


@pytest.fixture
def api_stack(make_stack: Callable[..., Stack], token_issuer: TokenIssuer,
              keyed_tasks_emulator: KeyedTasksEmulator) -> Stack:
    return make_stack(paused=True, api_require_auth=True, api_audience=AUDIENCE, firebase_project_id=PROJECT,
                      firebase_certs_url=token_issuer.certs_url,
                      oidc_certs_url=keyed_tasks_emulator.emulator.certs_url)


Forge = Callable[[TokenIssuer, KeyedTasksEmulator, bytes], str]  # (issuer, Google's keys, a foreign key)


def firebase(**changes: Any) -> Forge:
    """A Firebase token of PROJECT for `alice`, with these claims bent."""
    return lambda issuer, keyed, foreign: issuer.firebase_token("alice", PROJECT, **changes)


def google(signer: str, **changes: Any) -> Forge:
    """A Google-issued token for AUDIENCE, signed with the emulator's key or the Firebase issuer's."""
    def forge(issuer: TokenIssuer, keyed: KeyedTasksEmulator, foreign: bytes) -> str:
        claims = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "sub": "1234567890", "iat": NOW,
                  "exp": NOW + 3600, **changes}
        return issuer.sign({k: v for k, v in claims.items() if v is not None},
                           keyed.signer if signer == "google" else issuer.signer)
    return forge


REFUSED: list[tuple[str, Forge]] = [
    ("for another Firebase project", firebase(aud="another-project")),
    ("issued by another Firebase project", firebase(iss="https://securetoken.google.com/another-project")),
    ("issued by a look-alike issuer", firebase(iss=f"https://securetoken.google.com/{PROJECT}/")),
    ("expired", firebase(iat=NOW - 7200, exp=NOW - 3600, auth_time=NOW - 7200)),
    ("issued in the future", firebase(iat=NOW + 3600, exp=NOW + 7200)),
    ("without exp", firebase(exp=None)),
    ("without iat", firebase(iat=None)),
    ("without auth_time", firebase(auth_time=None)),
    ("signed in in the future", firebase(auth_time=NOW + 3600)),
    ("without a subject", firebase(sub=None)),
    ("with an empty subject", firebase(sub="")),
    ("with a subject longer than a uid", firebase(sub="u" * 129)),
    ("of an anonymous Firebase account", firebase(firebase={"identities": {}, "sign_in_provider": "anonymous"})),
    ("signed by another key under the issuer's key id", lambda issuer, keyed, foreign: issuer.sign(
        issuer.firebase_claims("alice", PROJECT), crypt.RSASigner.from_string(foreign, key_id=issuer.kid))),
    ("signed by another key under its own key id", lambda issuer, keyed, foreign: issuer.sign(
        issuer.firebase_claims("alice", PROJECT), crypt.RSASigner.from_string(foreign, key_id="foreign"))),
    ("Firebase claims signed with Google's key", lambda issuer, keyed, foreign: issuer.sign(
        issuer.firebase_claims("alice", PROJECT), keyed.signer)),
    ("Google claims signed with the Firebase key", google("firebase")),
    ("Google-issued for another audience", google("google", aud="https://elsewhere.test/")),
    ("with alg none", lambda issuer, keyed, foreign: b64_json({"alg": "none", "typ": "JWT", "kid": issuer.kid}) + "."
     + b64_json(issuer.firebase_claims("alice", PROJECT)) + "."),
    ("valid signature, payload swapped", lambda issuer, keyed, foreign: swap_payload(
        issuer.firebase_token("mallory", PROJECT), issuer.firebase_claims("alice", PROJECT))),
    ("of an issuer the API does not know", firebase(iss="https://issuer.example/")),
    ("without an issuer", firebase(iss=None)),
]


@pytest.mark.parametrize(("scenario", "forge"), REFUSED, ids=[r[0] for r in REFUSED])
def test_the_api_refuses_the_token_and_writes_nothing(api_stack: Stack, token_issuer: TokenIssuer,
                                                      keyed_tasks_emulator: KeyedTasksEmulator,
                                                      foreign_pem: bytes, scenario: str, forge: Forge) -> None:
    token = forge(token_issuer, keyed_tasks_emulator, foreign_pem)
    before = Footprint.of(api_stack)
    answer = api_stack.api_client.post("/jobs", json={"job_type": "noop", "idempotency_key": "k"},
                                       headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401, answer.get_json()
    assert answer.get_json()["error"]["code"] == "UNAUTHENTICATED"
    assert Footprint.of(api_stack) == before


def test_the_same_tokens_unbent_are_accepted(api_stack: Stack, token_issuer: TokenIssuer,
                                             keyed_tasks_emulator: KeyedTasksEmulator, foreign_pem: bytes) -> None:
    """The control: every refusal above comes from the one thing bent."""
    for forge in (firebase(), google("google")):
        token = forge(token_issuer, keyed_tasks_emulator, foreign_pem)
        answer = api_stack.api_client.post("/jobs", json={"job_type": "noop"},
                                           headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 202, answer.get_json()


def test_without_an_audience_or_project_no_token_of_that_kind_is_accepted(
        make_stack: Callable[..., Stack], token_issuer: TokenIssuer, keyed_tasks_emulator: KeyedTasksEmulator,
        foreign_pem: bytes) -> None:
    stack = make_stack(paused=True, api_require_auth=True, oidc_certs_url=keyed_tasks_emulator.emulator.certs_url,
                       firebase_certs_url=token_issuer.certs_url)  # neither api_audience nor firebase_project_id
    for forge in (firebase(), google("google")):
        token = forge(token_issuer, keyed_tasks_emulator, foreign_pem)
        answer = stack.api_client.get("/jobs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, answer.get_json()
