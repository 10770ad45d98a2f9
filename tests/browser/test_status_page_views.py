"""The status page's views in a real headless Chromium, through the real API entry point served over HTTP: the
operators' figures and timeline chart (and the line a non-operator sees instead), the job list's filters and
next-page paging kept in the address, a job's detail view with its errors, children and actions, text from the API
shown as text only, and the poller that stops while the tab is hidden.

Each test builds its own stack (its own Firestore project: only its jobs are listed), which costs a fraction of a
second; the browser, the emulators and the HTTP server are shared by the module (and the session)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from fixtures.issuer import TokenIssuer
from oncetask.states import JobState

from .conftest import Stack
from .test_status_page_sign_in import csp_violations, open_page, signing_in_stack, submit_as

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"


def until(browser: WebDriver, script: str, message: str, *args: Any, timeout: float = 20.0) -> Any:
    """Wait for `script` (run in the page, read in one step: the page rebuilds its views at any poll) to answer
    something truthy, and return that."""
    answer: list[Any] = []

    def check(driver: WebDriver) -> bool:
        value = driver.execute_script(script, *args)
        answer[:] = [value]
        return bool(value)

    WebDriverWait(browser, timeout, poll_frequency=0.1).until(check, message=message)
    return answer[0]


LISTED = """return [...document.querySelectorAll('#jobs tr[data-job-id]')]
                      .map((r) => [r.dataset.jobId, r.dataset.state]);"""
DETAIL_STATE = """const shown = document.getElementById('detail-state');
                  const state = shown && !document.getElementById('detail-view').hidden ? shown.dataset.state : null;
                  return arguments[0].includes(state) ? state : null;"""


def listed(browser: WebDriver) -> list[list[str]]:
    return list(browser.execute_script(LISTED))


def wait_detail_state(browser: WebDriver, *states: str, timeout: float = 20.0) -> str:
    """Wait for the detail view to show its job in one of `states`; the state it shows."""
    return str(until(browser, DETAIL_STATE, f"the detail view to show the job as one of {states}", list(states),
                     timeout=timeout))


def open_local(browser: WebDriver, api_server: str, fragment: str = "") -> None:
    """The page of a stack without sign-in (the local development caller), at `fragment`."""
    browser.get(f"{api_server}/healthz")  # away first: a new fragment alone would not load the page afresh
    browser.get_log("browser")
    browser.get(f"{api_server}/{fragment}")


def sign_in(browser: WebDriver, api_server: str, fragment: str = "") -> None:
    """Sign in through the issuer's page, from the page at `fragment` (nobody signed in before)."""
    open_page(browser, api_server)
    if fragment:
        browser.get(f"{api_server}/{fragment}")
    WebDriverWait(browser, 20, poll_frequency=0.1).until(
        lambda d: d.find_element(By.ID, "gate-sign-in").is_displayed(), message="the page to ask for sign-in")
    browser.find_element(By.ID, "gate-sign-in").click()


# The figures -----------------------------------------------------------------------------------------------------

def test_an_operator_sees_the_counts_by_state_and_a_timeline_chart_with_points(
        browser: WebDriver, make_stack: Callable[..., Stack], token_issuer: TokenIssuer, api_server: str) -> None:
    stack = make_stack(api_require_auth=True, firebase_project_id="demo-oncetask",
                       firebase_certs_url=token_issuer.certs_url,
                       status_sign_in_url=token_issuer.sign_in_url("olga", "demo-oncetask", oncetask_operator=True))
    done = [submit_as(stack, token_issuer, uid, "ran") for uid in ("alice", "bob")]
    for job_id in done:
        stack.wait_state(job_id, JobState.COMPLETED)

    sign_in(browser, api_server)
    counts = until(browser, """
        const badges = [...document.querySelectorAll('#figures-states .badge')];
        return badges.length ? Object.fromEntries(badges.map((b) => [b.dataset.state, Number(b.dataset.count)])) : null;
        """, "the figures panel's counts")
    assert counts["completed"] == 2 and counts["failed"] == 0  # both users' jobs: the figures cover every owner
    points = until(browser, """
        const svg = document.querySelector('#timeline svg');
        return svg ? [...svg.querySelectorAll('circle.point')].map((c) => [c.dataset.series, Number(c.dataset.count)])
                   : null;""", "the timeline chart")
    assert len(points) == 2 * 12  # a point per bucket (12 by default) for each of completed and failed
    assert sum(n for series, n in points if series == "completed") == 2
    labels = browser.execute_script(
        "return [...document.querySelectorAll('#timeline svg text')].map((t) => t.textContent);")
    assert "0" in labels and "2" in labels and any(":" in label for label in labels)  # counts and clock times
    assert browser.find_element(By.ID, "figures-note").is_displayed() is False
    assert csp_violations(browser) == []


def test_a_non_operator_sees_one_line_saying_the_figures_are_for_operators(
        browser: WebDriver, make_stack: Callable[..., Stack], token_issuer: TokenIssuer, api_server: str) -> None:
    stack = signing_in_stack(make_stack, token_issuer, "alice")
    mine = submit_as(stack, token_issuer, "alice", "mine")
    sign_in(browser, api_server, "#/jobs?state=queued")
    until(browser, "return document.querySelector(`#jobs tr[data-job-id='${arguments[0]}']`);", "alice's job", mine)
    assert browser.execute_script("return location.hash") == "#/jobs?state=queued"  # the view survived the sign-in
    note = until(browser, "const n = document.getElementById('figures-note'); return n.hidden ? null : n.textContent;",
                 "the figures' reason line")
    assert "for operators" in note
    assert browser.execute_script(
        "return document.querySelectorAll('#figures-body *, #timeline *').length") == 0  # no figures, no chart
    assert csp_violations(browser) == []


# The list ----------------------------------------------------------------------------------------------------------

def test_filtering_by_state_shows_only_that_state_and_paging_reaches_the_next_page_and_survives_a_reload(
        browser: WebDriver, make_stack: Callable[..., Stack], api_server: str) -> None:
    stack = make_stack()
    completed = [stack.submit_ok("noop", {"note": str(i)}) for i in range(3)]
    failed = stack.submit_ok("test.pipeline", {"fail_times": 1, "fail_kind": "permanent"})
    for job_id in completed:
        stack.wait_state(job_id, JobState.COMPLETED)
    stack.wait_state(failed, JobState.FAILED)

    open_local(browser, api_server, "#/jobs?limit=2")
    until(browser, "return document.querySelectorAll('#jobs tr[data-job-id]').length === 2", "the first page")
    Select(browser.find_element(By.ID, "state-filter")).select_by_value("completed")
    until(browser, "return location.hash.includes('state=completed')", "the filter in the address")
    first = until(browser, """
        const rows = [...document.querySelectorAll('#jobs tr[data-job-id]')];
        return rows.length === 2 && rows.every((r) => r.dataset.state === 'completed')
            && !document.getElementById('page-next').disabled ? rows.map((r) => r.dataset.jobId) : null;""",
                  "two completed jobs and a next page")
    assert failed not in first

    browser.find_element(By.ID, "page-next").click()
    second = until(browser, """
        const rows = [...document.querySelectorAll('#jobs tr[data-job-id]')];
        return location.hash.includes('cursor=') && rows.length === 1
            ? rows.map((r) => [r.dataset.jobId, r.dataset.state]) : null;""", "the second page")
    assert second[0][1] == "completed" and second[0][0] not in first
    assert {second[0][0], *first} == set(completed)

    browser.refresh()  # the address keeps the filter and the page
    assert until(browser, LISTED, "the second page again, after a reload") == second
    state_filter = Select(browser.find_element(By.ID, "state-filter"))
    assert state_filter.first_selected_option.get_attribute("value") == "completed"

    Select(browser.find_element(By.ID, "type-filter")).select_by_value("test.pipeline")
    until(browser, "return location.hash.includes('job_type=test.pipeline') && !location.hash.includes('cursor=')",
          "the type filter in the address, from the first page")
    until(browser, "return document.querySelector('#jobs td.empty')", "no completed test.pipeline job")
    Select(browser.find_element(By.ID, "state-filter")).select_by_value("")
    assert until(browser, LISTED, "the failed test.pipeline job") == [[failed, "failed"]]


# The detail view ---------------------------------------------------------------------------------------------------

def test_the_detail_of_a_failed_job_shows_the_error_type_and_traceback_and_retry_moves_it_on_without_a_reload(
        browser: WebDriver, make_stack: Callable[..., Stack], api_server: str) -> None:
    stack = make_stack()
    job_id = stack.submit_ok("test.pipeline", {"fail_times": 1, "fail_kind": "bug"})
    stack.wait_state(job_id, JobState.FAILED)

    open_local(browser, api_server)
    until(browser, "return document.querySelector(`#jobs tr[data-job-id='${arguments[0]}'] a`)", "the job's link",
          job_id).click()  # from the list to the detail, by its link
    assert wait_detail_state(browser, "failed") == "failed"
    assert browser.execute_script("return location.hash") == f"#/jobs/{job_id}"
    browser.execute_script("window.notReloaded = true")
    error = until(browser, """
        const e = document.querySelector('#detail-errors li');
        const pre = e && e.querySelector('details.traceback pre');
        return pre ? {code: e.querySelector('.error-code').textContent,
                      type: e.querySelector('.error-type').textContent,
                      summary: e.querySelector('details summary').textContent, traceback: pre.textContent} : null;""",
                  "the error with its traceback")
    assert error["code"] == "BUG" and error["type"].strip() == "KeyError" and error["summary"] == "Traceback"
    assert "Traceback" in error["traceback"] and "KeyError: 'width'" in error["traceback"]
    stages = browser.execute_script(
        "return [...document.querySelectorAll('.stages-table tr[data-stage]')].map((r) => r.innerText);")
    assert stages[0].startswith("prepare\tdone") and "gs://" in stages[0]  # checkpoint, attempt and artifact
    assert browser.find_elements(By.ID, "detail-cancel") == []  # a failed job is retried, not cancelled

    browser.find_element(By.ID, "detail-retry").click()
    assert wait_detail_state(browser, "completed") == "completed"
    assert browser.execute_script("return window.notReloaded") is True
    assert "Retry requested" in browser.find_element(By.ID, "detail-message").text
    assert browser.find_elements(By.ID, "detail-retry") == []
    assert csp_violations(browser) == []


def test_cancel_in_the_detail_view_stops_a_running_job(browser: WebDriver, make_stack: Callable[..., Stack],
                                                       api_server: str) -> None:
    stack = make_stack()
    job_id = stack.submit_ok("test.pipeline", {"sleep_ms": 20_000})
    open_local(browser, api_server, f"#/jobs/{job_id}")
    wait_detail_state(browser, "running")
    until(browser, "return document.getElementById('detail-progress')", "the running stage's progress")
    browser.find_element(By.ID, "detail-cancel").click()
    assert wait_detail_state(browser, "cancelled") == "cancelled"
    assert stack.job(job_id).state is JobState.CANCELLED
    assert browser.find_elements(By.ID, "detail-cancel") == [] and browser.find_elements(By.ID, "detail-retry") == []


def test_a_refused_action_is_shown_in_the_detail_views_message_line(
        browser: WebDriver, make_stack: Callable[..., Stack], api_server: str) -> None:
    stack = make_stack()
    job_id = stack.submit_ok("test.pipeline", {"fail_times": 1, "fail_kind": "permanent"})
    stack.wait_state(job_id, JobState.FAILED)
    open_local(browser, api_server, f"#/jobs/{job_id}")
    wait_detail_state(browser, "failed")
    browser.execute_script("document.getElementById('live').checked = false")  # hold the view still
    assert stack.api_client.post(f"/jobs/{job_id}/retry").status_code == 202  # someone else retried it meanwhile
    stack.wait_state(job_id, JobState.COMPLETED)
    browser.find_element(By.ID, "detail-retry").click()
    until(browser, "return document.getElementById('detail-message').textContent.includes('only failed jobs')",
          "the API's refusal in the message line")


def test_text_from_the_api_is_shown_as_text_and_creates_no_element(
        browser: WebDriver, make_stack: Callable[..., Stack], api_server: str) -> None:
    stack = make_stack()
    job_id = stack.submit_ok("noop", {"note": HOSTILE}, key=HOSTILE)
    stack.wait_state(job_id, JobState.COMPLETED)
    open_local(browser, api_server, f"#/jobs/{job_id}")
    wait_detail_state(browser, "completed")
    text = until(browser, "return document.getElementById('detail').textContent", "the detail")
    assert text.count(HOSTILE) >= 3  # the payload, the stage's output and the idempotency key, verbatim
    assert browser.execute_script("return document.querySelectorAll('img').length") == 0
    assert not any("alert" in entry["message"] for entry in browser.get_log("browser"))


def test_children_are_listed_with_links_to_their_own_detail(browser: WebDriver, make_stack: Callable[..., Stack],
                                                            api_server: str) -> None:
    stack = make_stack()
    parent = stack.submit_ok("test.fanout", {"parts": 2})
    stack.wait_state(parent, JobState.COMPLETED)
    open_local(browser, api_server, f"#/jobs/{parent}")
    children = until(browser, "const a = [...document.querySelectorAll('#detail a.child')]; "
                              "return a.length === 2 ? a.map((l) => l.textContent) : null;", "two child links")
    browser.find_element(By.CSS_SELECTOR, "#detail a.child").click()
    assert wait_detail_state(browser, "completed") == "completed"
    until(browser, "return document.getElementById('detail-id').textContent === arguments[0]", "the child's detail",
          children[0])
    parent_link = browser.execute_script("return [...document.querySelectorAll('#detail a')].map((a) => a.textContent)")
    assert parent in parent_link  # and back up to its parent


# Polling -------------------------------------------------------------------------------------------------------------

API_CALLS = """
    return performance.getEntriesByType('resource')
      .filter((e) => e.initiatorType === 'fetch').map((e) => new URL(e.name).pathname);"""


def test_the_page_stops_polling_while_hidden_and_catches_up_when_shown_again(
        browser: WebDriver, make_stack: Callable[..., Stack], api_server: str) -> None:
    stack = make_stack()
    stack.submit_ok("noop", {"note": "x"})
    open_local(browser, api_server)
    until(browser, "return document.querySelectorAll('#jobs tr[data-job-id]').length === 1", "the job")
    # The tab goes to the background (headless Chromium's tab is always visible: the document says it is not).
    browser.execute_script("""
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
        document.dispatchEvent(new Event('visibilitychange'));
        performance.clearResourceTimings();""")
    stack.submit_ok("noop", {"note": "y"})
    browser.execute_script("return new Promise((done) => setTimeout(done, 4000))")  # > one poll interval (3 s)
    assert browser.execute_script(API_CALLS) == []
    assert len(listed(browser)) == 1  # nothing asked, nothing new shown
    browser.execute_script("""
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));""")
    until(browser, "return document.querySelectorAll('#jobs tr[data-job-id]').length === 2",
          "the new job, at once", timeout=2.5)
