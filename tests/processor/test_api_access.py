"""Who may do what through the API, through its real entry point: by default every job endpoint refuses a caller
without a token (401) and touches nothing; a Firebase ID token owns its jobs by its uid and a Google ID token by its
`sub`; a user never sees or acts on another's jobs (404); an operator sees and acts on all of them; and where
anonymous submissions are allowed, only a job's capability opens it.

Firebase tokens come from a local issuer whose keys the API is pointed at (`token_issuer`); Google tokens are the
Cloud Tasks emulator's own, minted by dispatching a task (`mint_token`). Both are signed for real and verified by the
API exactly as in production.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from fixtures.issuer import TokenIssuer
from fixtures.tasks import wait_until
from oncetask.settings import Settings
from oncetask.states import JobState

from .conftest import Stack, mint_token

PROJECT = "demo-oncetask"  # the Firebase project whose users' tokens the API takes
AUDIENCE = "https://api.oncetask.test/"  # the audience of Google ID tokens for the API
OPERATOR_ROBOT = "ops-robot@oncetask-local.iam.gserviceaccount.com"
Headers = dict[str, str]


def secured(make_stack: Callable[..., Stack], issuer: TokenIssuer, **settings: Any) -> Stack:
    """A stack whose API takes Google tokens for AUDIENCE and Firebase tokens of PROJECT, as a deployment would."""
    values = {"paused": True, "api_require_auth": True, "api_audience": AUDIENCE, "firebase_project_id": PROJECT,
              "firebase_certs_url": issuer.certs_url, **settings}
    return make_stack(**values)


def person(issuer: TokenIssuer, uid: str, **claims: Any) -> Headers:
    return {"Authorization": f"Bearer {issuer.firebase_token(uid, PROJECT, **claims)}"}


def submit(stack: Stack, headers: Headers, job_type: str = "noop", payload: dict[str, Any] | None = None,
           key: str | None = None) -> Any:
    return stack.api_client.post("/jobs", json={"job_type": job_type, "payload": payload or {},
                                               "idempotency_key": key}, headers=headers)


def submitted(stack: Stack, headers: Headers, **kwargs: Any) -> str:
    answer = submit(stack, headers, **kwargs)
    assert answer.status_code == 202, answer.get_json()
    return str(answer.get_json()["job_id"])


def listed(stack: Stack, headers: Headers, query: str = "") -> set[str]:
    answer = stack.api_client.get(f"/jobs{query}", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    return {job["job_id"] for job in answer.get_json()["jobs"]}


# Without a token ---------------------------------------------------------------------------------------------------

JOB_ENDPOINTS = [("POST", "/jobs"), ("GET", "/jobs"), ("GET", "/jobs/{id}"), ("POST", "/jobs/{id}/retry"),
                 ("POST", "/jobs/{id}/cancel"), ("GET", "/jobs/{id}/children"), ("GET", "/me"),
                 ("GET", "/jobs/not-a-job-id"), ("GET", "/stats"), ("GET", "/stats/timeline")]


def test_the_api_requires_a_token_unless_told_otherwise() -> None:
    assert Settings.model_fields["api_require_auth"].default is True
    assert Settings.model_fields["allow_anonymous_submissions"].default is False


@pytest.mark.parametrize(("method", "path"), JOB_ENDPOINTS, ids=[f"{m} {p}" for m, p in JOB_ENDPOINTS])
def test_every_job_endpoint_refuses_a_caller_without_a_token_and_touches_nothing(
        make_stack, token_issuer: TokenIssuer, method: str, path: str) -> None:
    stack = secured(make_stack, token_issuer, api_require_auth=Settings.model_fields["api_require_auth"].default)
    job_id = submitted(stack, person(token_issuer, "alice"), payload={"note": "alice's"})
    before = stack.firestore_calls()
    answer = stack.api_client.open(path.format(id=job_id), method=method,
                                   json={"job_type": "noop"} if method == "POST" else None)
    assert answer.status_code == 401, answer.get_json()
    assert answer.get_json()["error"]["code"] == "UNAUTHENTICATED"
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert stack.firestore_calls() == before  # refused before any read
    assert stack.job(job_id).state is JobState.QUEUED


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/", "/assets/status.js", "/assets/status.css",
                                  "/status/config"])
def test_the_page_health_and_openapi_answer_without_a_token(make_stack, token_issuer: TokenIssuer,
                                                             path: str) -> None:
    stack = secured(make_stack, token_issuer)
    answer = stack.api_client.get(path)
    assert answer.status_code == 200
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


# Owners ------------------------------------------------------------------------------------------------------------

def test_a_firebase_token_owns_its_jobs_by_the_users_uid(make_stack, token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer)
    alice = person(token_issuer, "alice-uid", email="alice@example.com", email_verified=True)
    job_id = submitted(stack, alice)
    assert stack.job(job_id).owner == "alice-uid"  # = request.auth.uid in firestore.rules
    assert stack.api_client.get(f"/jobs/{job_id}", headers=alice).get_json()["owner"] == "alice-uid"
    me = stack.api_client.get("/me", headers=alice).get_json()
    assert me == {"owner": "alice-uid", "kind": "person", "email": "alice@example.com", "operator": False}


def test_a_google_id_token_owns_its_jobs_by_its_subject(make_stack, token_issuer: TokenIssuer, tasks_emulator,
                                                        task_target) -> None:
    stack = secured(make_stack, token_issuer)
    token = mint_token(tasks_emulator, task_target, "billing@oncetask-local.iam.gserviceaccount.com", AUDIENCE)
    subject = jwt.decode(token.removeprefix("Bearer "), options={"verify_signature": False})["sub"]
    job_id = submitted(stack, {"Authorization": token})
    assert stack.job(job_id).owner == subject
    assert stack.api_client.get("/me", headers={"Authorization": token}).get_json()["kind"] == "service"


def test_a_user_neither_sees_nor_acts_on_another_users_job(make_stack, token_issuer: TokenIssuer, tasks_emulator,
                                                           task_target) -> None:
    stack = secured(make_stack, token_issuer)
    alice, bob = person(token_issuer, "alice"), person(token_issuer, "bob")
    service = {"Authorization": mint_token(tasks_emulator, task_target, "svc@oncetask-local.iam.gserviceaccount.com",
                                           AUDIENCE)}
    job_id = submitted(stack, alice, key="report-7")
    for stranger in (bob, service):
        for method, path in (("GET", ""), ("POST", "/retry"), ("POST", "/cancel")):
            answer = stack.api_client.open(f"/jobs/{job_id}{path}", method=method, headers=stranger)
            assert answer.status_code == 404, (method, path, answer.get_json())
        assert job_id not in listed(stack, stranger)
    assert listed(stack, alice) == {job_id}
    assert stack.job(job_id).state is JobState.QUEUED and not stack.job(job_id).cancel_requested
    assert submitted(stack, bob, key="report-7") != job_id  # the same key is bob's own job, not alice's


# Operators ---------------------------------------------------------------------------------------------------------

def test_an_operator_listed_by_email_sees_and_cancels_every_job(make_stack, token_issuer: TokenIssuer,
                                                                tasks_emulator, task_target) -> None:
    stack = secured(make_stack, token_issuer, operators=frozenset({OPERATOR_ROBOT.upper()}))  # any case
    alice_job = submitted(stack, person(token_issuer, "alice"))
    bob_job = submitted(stack, person(token_issuer, "bob"))
    operator = {"Authorization": mint_token(tasks_emulator, task_target, OPERATOR_ROBOT, AUDIENCE)}
    assert stack.api_client.get("/me", headers=operator).get_json()["operator"] is True
    assert listed(stack, operator) == {alice_job, bob_job}
    assert listed(stack, operator, "?state=queued") == {alice_job, bob_job}
    assert stack.api_client.get(f"/jobs/{alice_job}", headers=operator).get_json()["owner"] == "alice"
    answer = stack.api_client.post(f"/jobs/{bob_job}/cancel", headers=operator)
    assert answer.status_code == 202 and answer.get_json()["status"] == "cancelled"
    assert listed(stack, operator, "?state=cancelled") == {bob_job}


def test_the_system_wide_figures_are_for_operators_only(make_stack, token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer)
    submitted(stack, person(token_issuer, "alice"))
    for path in ("/stats", "/stats/timeline"):
        refused = stack.api_client.get(path, headers=person(token_issuer, "alice"))
        assert refused.status_code == 403 and "operators only" in refused.get_json()["error"]["message"]
        answer = stack.api_client.get(path, headers=person(token_issuer, "root", oncetask_operator=True))
        assert answer.status_code == 200, answer.get_json()
        # Cached by the browser only for the same caller: the next user signed in on it must not get these figures.
        assert "Authorization" in answer.headers.get("Vary", ""), answer.headers
    figures = stack.api_client.get("/stats", headers=person(token_issuer, "root", oncetask_operator=True)).get_json()
    assert figures["states"]["queued"] == 1


def test_an_operators_listing_of_one_job_type_covers_every_owner(make_stack, token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer)
    alice_noop = submitted(stack, person(token_issuer, "alice"))
    submitted(stack, person(token_issuer, "alice"), job_type="test.pipeline", payload={})
    bob_noop = submitted(stack, person(token_issuer, "bob"))
    operator = person(token_issuer, "root", oncetask_operator=True)
    assert listed(stack, operator, "?job_type=noop") == {alice_noop, bob_noop}
    assert listed(stack, operator, "?job_type=noop&state=queued") == {alice_noop, bob_noop}
    assert listed(stack, person(token_issuer, "bob"), "?job_type=noop") == {bob_noop}


def test_an_operator_by_firebase_claim_retries_another_users_failed_job(make_stack,
                                                                       token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer, paused=False)
    alice = person(token_issuer, "alice")
    job_id = submitted(stack, alice, job_type="test.pipeline", payload={"fail_times": 1, "fail_kind": "permanent"})
    stack.wait_state(job_id, JobState.FAILED)
    operator = person(token_issuer, "olga", oncetask_operator=True)
    answer = stack.api_client.post(f"/jobs/{job_id}/retry", headers=operator)
    assert answer.status_code == 202, answer.get_json()
    assert stack.wait_state(job_id, JobState.COMPLETED).owner == "alice"  # still alice's job
    assert job_id in listed(stack, alice)


def test_an_operator_listed_by_subject_reads_every_job(make_stack, token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer, operators=frozenset({"olga"}))
    job_id = submitted(stack, person(token_issuer, "alice"))
    assert stack.api_client.get(f"/jobs/{job_id}", headers=person(token_issuer, "olga")).status_code == 200


@pytest.mark.parametrize("claims", [
    {"oncetask_operator": "true"}, {"oncetask_operator": 1}, {"oncetask_operator": False},
    {"email": "ops@example.com", "email_verified": False}, {"email": "ops@example.com"}],
    ids=["claim is a string", "claim is a number", "claim is false", "listed email unverified",
         "listed email without email_verified"])
def test_what_does_not_make_an_operator(make_stack, token_issuer: TokenIssuer, claims: dict[str, Any]) -> None:
    stack = secured(make_stack, token_issuer, operators=frozenset({"ops@example.com"}))
    job_id = submitted(stack, person(token_issuer, "alice"))
    mallory = person(token_issuer, "mallory", **claims)
    assert stack.api_client.get(f"/jobs/{job_id}", headers=mallory).status_code == 404
    assert listed(stack, mallory) == set()


# Anonymous submissions (an explicit opt-in) ----------------------------------------------------------------------

def capability(secret: str) -> Headers:
    return {"Authorization": f"Capability {secret}"}


def test_an_anonymous_submission_answers_a_capability_that_alone_opens_its_job(make_stack,
                                                                             token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer, allow_anonymous_submissions=True,
                    operators=frozenset({"olga"}))
    answer = submit(stack, {})
    assert answer.status_code == 202, answer.get_json()
    job_id, secret = answer.get_json()["job_id"], answer.get_json()["capability"]
    stored = stack.services.store.get_doc("jobs", job_id)
    assert stored is not None and stored["owner"] == "capability:" + hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(stored)  # only its hash is kept

    assert stack.api_client.get(f"/jobs/{job_id}").status_code == 401  # nobody: no identity, no capability
    other = submit(stack, {}).get_json()["capability"]
    for stranger in (capability(other), person(token_issuer, "alice")):
        assert stack.api_client.get(f"/jobs/{job_id}", headers=stranger).status_code == 404
        assert stack.api_client.post(f"/jobs/{job_id}/cancel", headers=stranger).status_code == 404
    assert stack.api_client.get(f"/jobs/{job_id}", headers=capability(secret)).status_code == 200
    assert stack.api_client.get(f"/jobs/{job_id}", headers=person(token_issuer, "olga")).status_code == 200
    cancelled = stack.api_client.post(f"/jobs/{job_id}/cancel", headers=capability(secret))
    assert cancelled.status_code == 202 and cancelled.get_json()["status"] == "cancelled"


def test_without_an_identity_a_listing_is_empty(make_stack, token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer, allow_anonymous_submissions=True)
    secret = submit(stack, {}).get_json()["capability"]
    submitted(stack, person(token_issuer, "alice"))
    assert listed(stack, {}) == set()
    assert listed(stack, capability(secret)) == set()  # a capability opens its job, not a list
    assert stack.api_client.get("/me", headers=capability(secret)).status_code == 401


def test_a_keyed_anonymous_submission_needs_a_capability_of_its_own(make_stack, token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer, allow_anonymous_submissions=True)
    refused = submit(stack, {}, key="upload-1")
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "idempotency_key"
    mine = "my-own-secret-" + "x" * 30
    first, again = (submit(stack, capability(mine), key="upload-1").get_json() for _ in range(2))
    assert first["job_id"] == again["job_id"] and again["status"] == "already_queued"
    assert first["capability"] == mine
    theirs = submit(stack, capability("their-own-secret-" + "y" * 30), key="upload-1").get_json()
    assert theirs["job_id"] != first["job_id"]  # the same key under another capability is another job


@pytest.mark.parametrize("authorization", ["Bearer not-a-jwt", "Capability short", "Basic dXNlcjpwYXNz"])
def test_a_bad_credential_is_refused_and_never_taken_for_an_anonymous_call(make_stack, token_issuer: TokenIssuer,
                                                                           authorization: str) -> None:
    stack = secured(make_stack, token_issuer, allow_anonymous_submissions=True)
    before = stack.firestore_calls()
    assert submit(stack, {"Authorization": authorization}).status_code == 401
    assert stack.firestore_calls() == before


def test_a_capability_is_refused_where_anonymous_submissions_are_not_allowed(make_stack,
                                                                            token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer)
    answer = submit(stack, capability("z" * 43))
    assert answer.status_code == 401 and "anonymous submissions" in answer.get_json()["error"]["message"]


def test_anonymous_submissions_cannot_be_allowed_on_an_api_that_requires_no_token() -> None:
    with pytest.raises(ValueError, match="allow_anonymous_submissions needs api_require_auth"):
        Settings(api_require_auth=False, allow_anonymous_submissions=True)


def test_a_development_api_without_tokens_still_verifies_the_tokens_it_is_sent(make_stack,
                                                                              token_issuer: TokenIssuer) -> None:
    stack = secured(make_stack, token_issuer, api_require_auth=False)
    assert stack.job(submitted(stack, {})).owner == "anonymous"  # the shared development caller
    assert submit(stack, {"Authorization": "Bearer not-a-jwt"}).status_code == 401
    assert stack.job(submitted(stack, person(token_issuer, "alice"))).owner == "alice"
