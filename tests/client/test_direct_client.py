"""What only the direct client does: write through the app's own commands with the API's job IDs, task names and
de-duplication, as a given owner, and map what Firestore answers to the errors the HTTP client raises. Firestore
failures are injected by a pass-through gRPC gate in front of the real emulator."""

from __future__ import annotations

import grpc
import pytest
from google.auth import jwt

import oncetask
from oncetask import (Client, DirectClient, PermissionDeniedError, UnauthenticatedError, UnavailableError)

from .conftest import Stack, mint_token

KEY = "order-1234"


def test_a_direct_submit_and_an_api_submit_with_one_key_are_one_job(make_stack, api_server: str) -> None:
    stack: Stack = make_stack(paused=True)
    direct = stack.app.client().submit("noop", {"note": "same"}, key=KEY)
    with Client(api_server) as client:
        over_http = client.submit("noop", {"note": "same"}, key=KEY)
        assert client.get(direct.job_id).job_id == direct.job_id
    assert (over_http.job_id, over_http.status, over_http.task_name) == (direct.job_id, "already_queued",
                                                                         direct.task_name)
    assert stack.tasks() == [direct.task_name]


def test_app_client_is_a_direct_client_of_that_app(make_stack) -> None:
    stack: Stack = make_stack(paused=True)
    client = stack.app.client(owner="billing-service")
    assert isinstance(client, DirectClient) and client.app is stack.app
    submitted = client.submit("noop", key=KEY)
    assert stack.job(submitted.job_id).owner == "billing-service"


def test_a_direct_client_owning_a_token_callers_subject_shares_that_callers_jobs(
        make_stack, api_server: str, tasks_emulator, task_target) -> None:
    audience = "https://api.oncetask.test/"
    stack: Stack = make_stack(paused=True, api_require_auth=True, api_audience=audience)
    token = mint_token(tasks_emulator, task_target, "alice@example.com", audience).removeprefix("Bearer ")
    subject = jwt.decode(token, verify=False)["sub"]
    direct = stack.app.client(owner=subject).submit("noop", key=KEY)
    with Client(api_server, token=token) as alice:
        assert alice.get(direct.job_id).state is oncetask.JobState.QUEUED
        assert alice.submit("noop", key=KEY).job_id == direct.job_id
    assert stack.app.client().submit("noop", key=KEY).job_id != direct.job_id  # the anonymous caller's own job


@pytest.fixture
def gated_stack(make_stack, firestore_emulator, grpc_gate):
    """A stack (paused) whose Firestore calls, the direct client's included, pass through a gate."""
    gate = grpc_gate(firestore_emulator.host)
    return make_stack(paused=True, FIRESTORE_EMULATOR_HOST=gate.host), gate


def test_firestore_unavailable_is_unavailable_after_the_retries(gated_stack) -> None:
    stack, gate = gated_stack
    rule = gate.fail(lambda method, request: method == "Commit", code=grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(UnavailableError) as unavailable:
        DirectClient(stack.app, retries=1).submit("noop", key=KEY)
    assert unavailable.value.status == 503
    assert rule.seen > 2  # the store's own retries within each of the client's two tries


def test_firestore_refusing_the_service_is_permission_denied(gated_stack) -> None:
    stack, gate = gated_stack
    gate.fail(lambda method, request: method == "Commit", code=grpc.StatusCode.PERMISSION_DENIED)
    with pytest.raises(PermissionDeniedError) as denied:
        stack.app.client().submit("noop", key=KEY)
    assert (denied.value.status, denied.value.code) == (403, "PERMISSION_DENIED")
    assert stack.tasks() == []


def test_firestore_refusing_the_credentials_is_unauthenticated(gated_stack) -> None:
    stack, gate = gated_stack
    gate.fail(lambda method, request: method == "BatchGetDocuments", code=grpc.StatusCode.UNAUTHENTICATED)
    with pytest.raises(UnauthenticatedError) as refused:
        stack.app.client().get("0" * 32)
    assert (refused.value.status, refused.value.code) == (401, "UNAUTHENTICATED")


def test_an_owner_that_is_not_a_name_is_refused_at_once() -> None:
    for owner in ("", 42):
        with pytest.raises(ValueError, match="owner"):
            oncetask.App().client(owner=owner)  # type: ignore[arg-type]
