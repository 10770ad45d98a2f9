"""OIDC tokens on dispatched requests, verified the way a handler verifies Google's: google-auth + our JWKS."""

from __future__ import annotations

import time

import google.auth.transport.requests
import jwt
import pytest
from google.oauth2 import id_token

SERVICE_ACCOUNT = "oncetask-tasks@oncetask-local.iam.gserviceaccount.com"
# google-auth verifies a JWKS (v3) certs URL through PyJWT, whose errors are not ValueErrors.
REJECTED = (ValueError, jwt.PyJWTError)


def bearer(request) -> str:
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


def verify(token: str, audience: str, certs_url: str) -> dict:
    return id_token.verify_token(token, google.auth.transport.requests.Request(), audience, certs_url=certs_url)


def test_token_verifies_with_google_auth_and_carries_the_service_account(
        tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    client.create_task(parent=queue, task={"http_request": {
        "url": task_target.url, "oidc_token": {"service_account_email": SERVICE_ACCOUNT, "audience": "https://aud"}}})
    [request] = task_target.wait_for(1)
    claims = verify(bearer(request), "https://aud", tasks_emulator.certs_url)
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["email"] == SERVICE_ACCOUNT and claims["email_verified"] is True and claims["sub"]
    assert claims["exp"] - claims["iat"] == 3600 and abs(claims["iat"] - time.time()) < 60


def test_token_for_a_wrong_audience_is_rejected(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    client.create_task(parent=queue, task={"http_request": {
        "url": task_target.url, "oidc_token": {"service_account_email": SERVICE_ACCOUNT, "audience": "https://aud"}}})
    [request] = task_target.wait_for(1)
    with pytest.raises(REJECTED, match="[Aa]udience"):
        verify(bearer(request), "https://someone-else", tasks_emulator.certs_url)


def test_audience_defaults_to_the_target_url(tasks_emulator, tasks_queue_factory, task_target):
    client = tasks_emulator.client()
    queue = tasks_queue_factory()
    client.create_task(parent=queue, task={"http_request": {
        "url": task_target.url, "oidc_token": {"service_account_email": SERVICE_ACCOUNT}}})
    [request] = task_target.wait_for(1)
    assert verify(bearer(request), task_target.url, tasks_emulator.certs_url)["aud"] == task_target.url


def test_token_from_another_emulator_key_is_rejected(tasks_emulator, tasks_emulator_factory, tasks_queue_factory,
                                                     task_target):
    other = tasks_emulator_factory()
    queue = tasks_queue_factory(other)
    other.client().create_task(parent=queue, task={"http_request": {
        "url": task_target.url, "oidc_token": {"service_account_email": SERVICE_ACCOUNT}}})
    [request] = task_target.wait_for(1)
    with pytest.raises(REJECTED):
        verify(bearer(request), task_target.url, tasks_emulator.certs_url)  # the session emulator's keys
