"""What only the HTTP client does: send ID tokens, retry what is transient (and only what is safe to retry), and
read refusals that come from in front of the API. Tokens are real ID tokens signed by the Cloud Tasks emulator,
verified by the API against its JWKS; failures are injected by a pass-through gate in front of the real API."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from oncetask import Client, NotFoundError, PermissionDeniedError, UnauthenticatedError, UnavailableError

from .conftest import Stack, mint_token

AUDIENCE = "https://api.oncetask.test/"
KEY = "order-1234"


@pytest.fixture
def auth_stack(make_stack) -> Stack:
    """A stack whose API requires an ID token for AUDIENCE."""
    return make_stack(paused=True, api_require_auth=True, api_audience=AUDIENCE)


def test_a_given_token_is_sent_and_the_job_is_its_callers(auth_stack: Stack, api_server: str, tasks_emulator,
                                                          task_target) -> None:
    alice = mint_token(tasks_emulator, task_target, "alice@example.com", AUDIENCE).removeprefix("Bearer ")
    bob = mint_token(tasks_emulator, task_target, "bob@example.com", AUDIENCE).removeprefix("Bearer ")
    with Client(api_server, token=alice) as as_alice, Client(api_server, token=bob) as as_bob:
        submitted = as_alice.submit("noop", key=KEY)
        assert as_alice.get(submitted.job_id).job_id == submitted.job_id
        with pytest.raises(NotFoundError):
            as_bob.get(submitted.job_id)
        assert as_bob.submit("noop", key=KEY).job_id != submitted.job_id  # a key is per caller
    assert auth_stack.job(submitted.job_id).owner not in ("", "anonymous")


def test_a_token_function_is_called_for_every_request(auth_stack: Stack, api_server: str, tasks_emulator,
                                                      task_target) -> None:
    token = mint_token(tasks_emulator, task_target, "alice@example.com", AUDIENCE).removeprefix("Bearer ")
    calls: list[str] = []

    def fresh_token() -> str:
        calls.append(token)
        return token

    with Client(api_server, token=fresh_token) as client:
        client.get(client.submit("noop", key=KEY).job_id)
    assert len(calls) == 2


def test_no_token_to_an_api_that_requires_one_is_unauthenticated_and_says_why(auth_stack: Stack,
                                                                               api_server: str) -> None:
    with Client(api_server) as client, pytest.raises(UnauthenticatedError) as refused:
        client.submit("noop", key=KEY)
    assert (refused.value.status, refused.value.code) == (401, "UNAUTHENTICATED")
    assert "plain-http URL gets no Google ID token" in refused.value.message
    assert auth_stack.tasks() == []


def test_a_token_the_api_does_not_accept_is_unauthenticated(auth_stack: Stack, api_server: str, tasks_emulator,
                                                            task_target) -> None:
    elsewhere = mint_token(tasks_emulator, task_target, "alice@example.com", "https://elsewhere.test/")
    for token in (elsewhere.removeprefix("Bearer "), "not-a-jwt"):
        with Client(api_server, token=token) as client, pytest.raises(UnauthenticatedError) as refused:
            client.list()
        assert refused.value.status == 401 and "invalid token" in refused.value.message


def test_without_google_credentials_no_token_is_sent_and_a_401_says_so(auth_stack: Stack, api_server: str,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # google-auth looks at GOOGLE_APPLICATION_CREDENTIALS first: a path that does not exist ends its search there,
    # on any machine (it would otherwise ask a metadata server, which a CI machine on Compute Engine has).
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    with Client(api_server, audience=AUDIENCE) as client, pytest.raises(UnauthenticatedError) as refused:
        client.submit("noop", key=KEY)
    assert "google-auth found no credentials" in refused.value.message


def test_a_keyed_submit_goes_through_a_503_and_makes_one_job(make_stack, api_server: str, http_gate) -> None:
    stack = make_stack(paused=True)
    gate = http_gate(api_server)
    gate.fail(_first(lambda method, path: method == "POST" and path == "/jobs"), status=503)
    with Client(gate.url) as client:
        submitted = client.submit("noop", key=KEY)
        assert [job.job_id for job in client.iter_jobs()] == [submitted.job_id]
    posts = [(call.status, call.forwarded) for call in gate.calls if call.method == "POST"]
    assert posts == [(503, False), (202, True)]
    assert stack.tasks() == [submitted.task_name]


def test_a_submit_without_a_key_is_not_retried_after_a_503(make_stack, api_server: str, http_gate) -> None:
    stack = make_stack(paused=True)
    gate = http_gate(api_server)
    gate.fail(lambda method, path: method == "POST", status=503)
    with Client(gate.url) as client, pytest.raises(UnavailableError) as unavailable:
        client.submit("noop")
    assert (unavailable.value.status, unavailable.value.code) == (503, "UNAVAILABLE")
    assert len(gate.calls) == 1 and stack.tasks() == []


def test_reads_are_retried_until_the_retries_are_spent(make_stack, api_server: str, http_gate) -> None:
    make_stack(paused=True)
    gate = http_gate(api_server)
    gate.fail(lambda method, path: method == "GET", status=502)
    with Client(gate.url, retries=2) as client, pytest.raises(UnavailableError) as unavailable:
        client.list()
    assert unavailable.value.status == 502
    assert len(gate.calls) == 3


def test_an_api_that_cannot_be_reached_is_unavailable(make_stack) -> None:
    with socket.socket() as closed:  # a port nothing listens on: bound, then released
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", retries=1) as client, pytest.raises(UnavailableError) as unreachable:
        client.get("0" * 32)
    assert (unreachable.value.status, unreachable.value.code) == (None, "UNREACHABLE")
    assert f"127.0.0.1:{port}" in unreachable.value.message


def test_a_refusal_from_in_front_of_the_api_is_read_from_its_status(make_stack, api_server: str, http_gate) -> None:
    # Cloud Run refuses a caller without the invoker role before the function runs, in Google's error format (a
    # numeric code), not the API's: the status decides the error, the body's message is kept.
    make_stack(paused=True)
    gate = http_gate(api_server)
    gate.fail(lambda method, path: True, status=403)
    with Client(gate.url) as client, pytest.raises(PermissionDeniedError) as denied:
        client.submit("noop", key=KEY)
    assert (denied.value.status, denied.value.code, denied.value.message) == (403, "PERMISSION_DENIED",
                                                                              "injected by the gate")


def test_a_base_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        Client("api.oncetask.test")


def _first(match):
    """A gate rule's match that holds for the first matching request only."""
    seen: list[object] = []

    def first(*request: object) -> bool:
        if match(*request) and not seen:
            seen.append(request)
            return True
        return False

    return first


def test_a_capability_opens_only_the_anonymous_job_it_came_with(make_stack, api_server: str) -> None:
    make_stack(paused=True, api_require_auth=True, api_audience=AUDIENCE, allow_anonymous_submissions=True)
    with Client(api_server) as anonymous:
        first, second = anonymous.submit("noop"), anonymous.submit("noop")
        with pytest.raises(UnauthenticatedError):
            anonymous.get(first.job_id)  # no identity, no capability
    assert first.capability and second.capability and first.capability != second.capability
    with Client(api_server, capability=first.capability) as holder:
        assert holder.get(first.job_id).job_id == first.job_id
        with pytest.raises(NotFoundError):
            holder.get(second.job_id)  # another anonymous caller's job
        assert holder.cancel(first.job_id).status == "cancelled"


def test_a_capability_of_your_own_makes_a_keyed_anonymous_submission_idempotent(make_stack, api_server: str) -> None:
    make_stack(paused=True, api_require_auth=True, api_audience=AUDIENCE, allow_anonymous_submissions=True)
    mine = "my-own-capability-" + "x" * 30
    with Client(api_server, capability=mine) as client:
        first, again = client.submit("noop", key=KEY), client.submit("noop", key=KEY)
    assert again.job_id == first.job_id and again.status == "already_queued" and first.capability == mine


def test_a_capability_and_a_token_together_are_refused() -> None:
    with pytest.raises(ValueError, match="capability"):
        Client("http://127.0.0.1:9/", capability="x" * 40, token="t")
