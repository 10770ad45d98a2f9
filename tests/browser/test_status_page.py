"""The status page in a real headless Chromium: it lists jobs as they move, Retry re-runs a failed job, Cancel
stops a running one. It calls only the public API of the shared local stack, which needs no token (local
development): the page works without signing in."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from fixtures.tasks import wait_until
from oncetask_dev.apiclient import ApiClient
from oncetask_dev.stack import LocalStack

pytestmark = pytest.mark.browser

# Where the test leaves its screenshot, to look at (STATUS_PAGE_SCREENSHOT overrides).
SCREENSHOT = Path(os.environ.get("STATUS_PAGE_SCREENSHOT", "/tmp/oncetask-status-page.png"))


def row(driver: WebDriver, job_id: str) -> dict[str, str] | None:
    """The job's row as the page shows it now ({state, text}), read in one step: the page may rebuild it at
    any poll, so a Selenium element found first and read later can be gone."""
    return driver.execute_script(
        "const r = document.querySelector(`#jobs tr[data-job-id='${arguments[0]}']`);"
        "return r ? {state: r.dataset.state, text: r.innerText} : null;", job_id)


def row_state(driver: WebDriver, job_id: str) -> str | None:
    shown = row(driver, job_id)
    return shown["state"] if shown else None


def wait_row(driver: WebDriver, job_id: str, state: str, timeout: float = 30.0) -> None:
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: row_state(d, job_id) == state, message=f"the page to show job {job_id} as {state}")


def click(driver: WebDriver, selector: str, timeout: float = 10.0) -> None:
    """Click the element `selector` finds; the page rebuilds a row when its job changes, so find it afresh."""
    def attempt(d: WebDriver) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, selector).click()
        except StaleElementReferenceException:
            return False
        return True

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(attempt, message=f"to click {selector}")


def test_failed_job_is_shown_and_retry_moves_it_to_completed(browser: WebDriver, local_stack: LocalStack,
                                                             stack_api: ApiClient) -> None:
    key = f"page-{uuid.uuid4().hex[:8]}"
    job_id = stack_api.submit("test.pipeline", {"fail_times": 1, "fail_kind": "permanent"}, key)["job_id"]
    wait_until(lambda: stack_api.get(job_id)["state"] == "failed", timeout=20, message="the job to fail")

    browser.get(local_stack.api_url)
    wait_row(browser, job_id, "failed")
    shown = row(browser, job_id)
    assert shown is not None and "INJECTED_FAILURE" in shown["text"]  # the last error, as the API reports it
    browser.save_screenshot(str(SCREENSHOT))

    click(browser, f'#jobs tr[data-job-id="{job_id}"] button.retry')
    wait_row(browser, job_id, "completed")  # the page refreshed itself: nobody reloaded it
    assert stack_api.get(job_id)["attempts"] == 2
    assert "Retry requested" in browser.find_element(By.ID, "banner").text


def test_cancel_on_a_running_job_stops_it(browser: WebDriver, local_stack: LocalStack,
                                          stack_api: ApiClient) -> None:
    key = f"page-{uuid.uuid4().hex[:8]}"
    job_id = stack_api.submit("test.pipeline", {"sleep_ms": 20_000}, key)["job_id"]
    browser.get(local_stack.api_url)
    wait_row(browser, job_id, "running")
    click(browser, f'#jobs tr[data-job-id="{job_id}"] button.cancel')
    wait_row(browser, job_id, "cancelled")
    assert stack_api.get(job_id)["state"] == "cancelled"


def test_api_refusal_is_shown_on_the_page(browser: WebDriver, local_stack: LocalStack, stack_api: ApiClient) -> None:
    # A Retry that the API refuses (the job is no longer failed: someone retried it meanwhile) shows its message.
    key = f"page-{uuid.uuid4().hex[:8]}"
    job_id = stack_api.submit("test.pipeline", {"fail_times": 1, "fail_kind": "permanent"}, key)["job_id"]
    wait_until(lambda: stack_api.get(job_id)["state"] == "failed", timeout=20, message="the job to fail")
    browser.get(local_stack.api_url)
    browser.execute_script("document.getElementById('live').checked = false")  # hold the page still
    wait_row(browser, job_id, "failed")
    stack_api.retry(job_id)
    wait_until(lambda: stack_api.get(job_id)["state"] == "completed", timeout=20, message="the job to complete")
    click(browser, f'#jobs tr[data-job-id="{job_id}"] button.retry')
    WebDriverWait(browser, 10, poll_frequency=0.1).until(
        lambda d: "only failed jobs can be retried" in d.find_element(By.ID, "banner").text,
        message="the API's refusal on the page")
