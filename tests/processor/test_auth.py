"""OIDC: the task handler, the cleanup target and (when configured) the API accept only the right identity.
Tokens are real ID tokens signed by the Cloud Tasks emulator, verified against its JWKS."""

from __future__ import annotations

import requests

from oncetask.states import JobState

from .conftest import Stack, mint_token

OTHER = "intruder@oncetask-local.iam.gserviceaccount.com"


def _post_task(stack: Stack, authorization: str | None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization else {}
    return requests.post(stack.settings.task_handler_url, json={"job_id": "0" * 32, "generation": 1},
                         headers=headers, timeout=10)


def test_task_handler_refuses_a_request_without_a_token(stack: Stack) -> None:
    answer = _post_task(stack, None)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "UNAUTHENTICATED"


def test_task_handler_refuses_a_forged_or_garbled_token(stack: Stack, tasks_emulator, task_target) -> None:
    token = mint_token(tasks_emulator, task_target, stack.settings.tasks_service_account,
                       stack.settings.effective_task_audience)
    header, payload, signature = token[len("Bearer "):].split(".")
    assert _post_task(stack, f"Bearer {header}.{payload}.{signature[::-1]}").status_code == 401
    assert _post_task(stack, "Bearer not-a-jwt").status_code == 401
    assert _post_task(stack, "Basic dXNlcjpwYXNz").status_code == 401


def test_task_handler_refuses_a_token_for_another_audience(stack: Stack, tasks_emulator, task_target) -> None:
    token = mint_token(tasks_emulator, task_target, stack.settings.tasks_service_account, "https://elsewhere/")
    assert _post_task(stack, token).status_code == 401


def test_task_handler_forbids_a_valid_token_of_another_identity(stack: Stack, tasks_emulator, task_target) -> None:
    token = mint_token(tasks_emulator, task_target, OTHER, stack.settings.effective_task_audience)
    answer = _post_task(stack, token)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "PERMISSION_DENIED"


def test_task_handler_accepts_the_queues_own_token(stack: Stack, tasks_emulator, task_target) -> None:
    token = mint_token(tasks_emulator, task_target, stack.settings.tasks_service_account,
                       stack.settings.effective_task_audience)
    answer = _post_task(stack, token)
    assert answer.status_code == 200 and answer.json()["outcome"] == "not_found"


def test_cleanup_refuses_no_token_and_forbids_the_tasks_identity(stack: Stack, tasks_emulator, task_target) -> None:
    assert stack.cleanup().status_code == 401
    wrong = mint_token(tasks_emulator, task_target, stack.settings.tasks_service_account,
                       stack.settings.cleanup_audience)
    assert stack.cleanup(Authorization=wrong).status_code == 403
    right = mint_token(tasks_emulator, task_target, stack.settings.scheduler_service_account,
                       stack.settings.cleanup_audience)
    answer = stack.cleanup(Authorization=right)
    assert answer.status_code == 200 and set(answer.get_json()) == {"requeued", "purged", "scanned", "errors"}


def test_api_with_auth_required_scopes_jobs_to_their_owner(make_stack, tasks_emulator, task_target) -> None:
    audience = "https://api.oncetask.test/"
    stack = make_stack(paused=True, api_require_auth=True, api_audience=audience)
    body = {"job_type": "noop", "payload": {}, "idempotency_key": "mine"}
    assert stack.api_client.post("/jobs", json=body).status_code == 401
    alice = {"Authorization": mint_token(tasks_emulator, task_target, "alice@example.com", audience)}
    bob = {"Authorization": mint_token(tasks_emulator, task_target, "bob@example.com", audience)}
    created = stack.api_client.post("/jobs", json=body, headers=alice).get_json()
    job_id = created["job_id"]
    assert stack.job(job_id).owner != "anonymous"
    assert stack.api_client.get(f"/jobs/{job_id}", headers=alice).status_code == 200
    assert stack.api_client.get(f"/jobs/{job_id}", headers=bob).status_code == 404
    assert stack.api_client.post(f"/jobs/{job_id}/cancel", headers=bob).status_code == 404
    assert stack.api_client.get("/jobs", headers=bob).get_json()["jobs"] == []
    # The same key from another caller is another job, not a conflict.
    assert stack.api_client.post("/jobs", json=body, headers=bob).get_json()["job_id"] != job_id
    assert stack.job(job_id).state is JobState.QUEUED
