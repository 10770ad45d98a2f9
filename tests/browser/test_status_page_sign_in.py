"""The status page against an API that requires tokens, in a real headless Chromium: it asks its user to sign in,
signs in through a local token issuer's page (the page's `issuer` sign-in, standing in for Firebase Authentication,
whose tokens the issuer's are shaped like), then shows only that user's jobs (an operator's: everyone's), sending the
ID token on every call; it runs under its Content-Security-Policy without a violation.

The API is the real entry point served over HTTP; the tokens are signed by the issuer's key and verified by the API
against the issuer's certificates, as production verifies Firebase's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from fixtures.issuer import TokenIssuer

from .conftest import Stack

pytestmark = pytest.mark.browser

PROJECT = "demo-oncetask"


def signing_in_stack(make_stack: Callable[..., Stack], issuer: TokenIssuer, uid: str, **claims: Any) -> Stack:
    """A stack whose API requires a token and takes the issuer's Firebase tokens, and whose page signs `uid` in."""
    return make_stack(paused=True, api_require_auth=True, firebase_project_id=PROJECT,
                      firebase_certs_url=issuer.certs_url,
                      status_sign_in_url=issuer.sign_in_url(uid, PROJECT, **claims))


def submit_as(stack: Stack, issuer: TokenIssuer, uid: str, note: str) -> str:
    answer = stack.api_client.post("/jobs", json={"job_type": "noop", "payload": {"note": note}}, headers={
        "Authorization": f"Bearer {issuer.firebase_token(uid, PROJECT)}"})
    assert answer.status_code == 202, answer.get_json()
    return str(answer.get_json()["job_id"])


def open_page(browser: WebDriver, api_server: str) -> None:
    """The page, with nobody signed in (the browser is shared by the module's tests: its session storage too)."""
    browser.get(f"{api_server}/healthz")
    browser.execute_script("sessionStorage.clear()")
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(f"{api_server}/")


def shown(browser: WebDriver) -> dict[str, Any]:
    """What the page shows now, read in one step."""
    return browser.execute_script("""
        const ids = [...document.querySelectorAll('#jobs tr[data-job-id]')].map((r) => r.dataset.jobId);
        const owners = [...document.querySelectorAll('#jobs td.owner')].map((c) => c.textContent);
        return {gate: !document.getElementById('gate').hidden, jobs: ids, owners: owners,
                session: document.getElementById('session').innerText,
                head: document.getElementById('jobs-head').innerText};""")


def wait_for(browser: WebDriver, predicate: Callable[[dict[str, Any]], bool], message: str) -> dict[str, Any]:
    WebDriverWait(browser, 20, poll_frequency=0.1).until(lambda d: predicate(shown(d)), message=message)
    return shown(browser)


def csp_violations(browser: WebDriver) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if "Content Security Policy" in entry["message"]]


def test_the_page_asks_for_sign_in_then_shows_only_the_users_jobs(
        browser: WebDriver, make_stack, token_issuer: TokenIssuer, api_server: str) -> None:
    stack = signing_in_stack(make_stack, token_issuer, "alice", email="alice@example.com", email_verified=True)
    mine = submit_as(stack, token_issuer, "alice", "alice's")
    theirs = submit_as(stack, token_issuer, "bob", "bob's")
    issued = len(token_issuer.issued)

    open_page(browser, api_server)
    page = wait_for(browser, lambda p: p["gate"], "the page to ask for sign-in")
    assert page["jobs"] == []

    browser.find_element(By.ID, "gate-sign-in").click()  # to the issuer's page and back with a token
    page = wait_for(browser, lambda p: mine in p["jobs"], "the page to show alice's job once she is signed in")
    assert theirs not in page["jobs"] and page["jobs"] == [mine]
    assert "alice@example.com" in page["session"] and "operator" not in page["session"]
    assert "Owner" not in page["head"]  # a user sees her own jobs only: no owner column
    assert len(token_issuer.issued) == issued + 1
    assert "id_token" not in browser.current_url  # the token left the address bar
    assert csp_violations(browser) == []


def test_an_operator_sees_every_users_jobs_with_their_owners(
        browser: WebDriver, make_stack, token_issuer: TokenIssuer, api_server: str) -> None:
    stack = signing_in_stack(make_stack, token_issuer, "olga", email="olga@example.com", oncetask_operator=True)
    alices = submit_as(stack, token_issuer, "alice", "alice's")
    bobs = submit_as(stack, token_issuer, "bob", "bob's")

    open_page(browser, api_server)
    wait_for(browser, lambda p: p["gate"], "the page to ask for sign-in")
    browser.find_element(By.ID, "gate-sign-in").click()
    page = wait_for(browser, lambda p: {alices, bobs} <= set(p["jobs"]), "the operator to see both users' jobs")
    assert sorted(page["owners"]) == ["alice", "bob"]
    assert "operator" in page["session"]
    assert csp_violations(browser) == []


def test_signing_out_hides_the_jobs_again(browser: WebDriver, make_stack, token_issuer: TokenIssuer,
                                          api_server: str) -> None:
    stack = signing_in_stack(make_stack, token_issuer, "alice")
    mine = submit_as(stack, token_issuer, "alice", "alice's")
    open_page(browser, api_server)
    wait_for(browser, lambda p: p["gate"], "the page to ask for sign-in")
    browser.find_element(By.ID, "gate-sign-in").click()
    wait_for(browser, lambda p: mine in p["jobs"], "alice's job")
    browser.find_element(By.ID, "sign-out").click()
    page = wait_for(browser, lambda p: p["gate"], "the page to ask for sign-in again")
    assert "Sign in" in page["session"]


def test_a_token_handed_to_the_page_without_its_sign_in_state_is_not_used(
        browser: WebDriver, make_stack, token_issuer: TokenIssuer, api_server: str) -> None:
    """A link carrying someone's token (login CSRF) does not sign the browser in: the page takes a token only back
    from a sign-in it started, with the random state it sent."""
    stack = signing_in_stack(make_stack, token_issuer, "alice")
    submit_as(stack, token_issuer, "mallory", "mallory's")
    open_page(browser, api_server)
    token = token_issuer.firebase_token("mallory", PROJECT)
    browser.get(f"{api_server}/healthz")  # away first: a fragment alone would not reload the page
    browser.get(f"{api_server}/#id_token={token}&state=guessed")
    page = wait_for(browser, lambda p: p["gate"], "the page to ask for sign-in")
    assert page["jobs"] == [] and "id_token" not in browser.current_url


def test_the_page_and_its_files_carry_a_csp_without_inline_script(make_stack, token_issuer: TokenIssuer,
                                                                 api_server: str) -> None:
    signing_in_stack(make_stack, token_issuer, "alice")
    page = requests.get(f"{api_server}/", timeout=10)
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Content-Type"].startswith("text/html")
    # No inline script or style (the policy would block them), no inline event handlers.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) and "<style" not in page.text
    assert not re.search(r"\son[a-z]+\s*=", page.text)
    for name, kind in (("status.js", "text/javascript"), ("jobs.js", "text/javascript"), ("status.css", "text/css")):
        asset = requests.get(f"{api_server}/assets/{name}", timeout=10)
        assert asset.status_code == 200 and asset.headers["Content-Type"].startswith(kind)
        assert asset.headers["Content-Security-Policy"] == page.headers["Content-Security-Policy"]
    assert requests.get(f"{api_server}/assets/..%2Fapi.py", timeout=10).status_code == 404
    assert requests.get(f"{api_server}/assets/nothing.js", timeout=10).status_code == 404


def test_with_firebase_sign_in_the_policy_allows_firebase_and_nothing_else(make_stack, api_server: str) -> None:
    make_stack(paused=True, api_require_auth=True, firebase_project_id="acme-prod", firebase_api_key="AIza-test")
    policy = dict(part.strip().split(" ", 1) for part in requests.get(
        f"{api_server}/", timeout=10).headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"].split() == ["'self'", "https://www.gstatic.com", "https://apis.google.com"]
    assert policy["frame-src"] == "https://acme-prod.firebaseapp.com"
    assert "https://identitytoolkit.googleapis.com" in policy["connect-src"].split()
    config = requests.get(f"{api_server}/status/config", timeout=10).json()
    assert config["sign_in"]["provider"] == "firebase"
    assert config["sign_in"]["firebase"] == {"apiKey": "AIza-test", "authDomain": "acme-prod.firebaseapp.com",
                                             "projectId": "acme-prod"}
