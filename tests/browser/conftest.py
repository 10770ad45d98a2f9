"""The status page's tests: a headless Chromium (one per module), the shared local stack (tests/fixtures/stack.py)
for the page without sign-in, and for the page that signs in, the processor's test stack with the real API entry
point served over HTTP (tests/client's `api_server`) and a local Firebase token issuer (`token_issuer`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from client.conftest import api_server  # noqa: F401 - the fixture
from processor.conftest import (Stack, api_app, cleanup_app, handler_server, make_stack,  # noqa: F401 - fixtures
                                storage_host)

__all__ = ["Stack"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not (shutil.which(path) or Path(path).exists())]
    if missing:
        pytest.fail(f"{missing} not found: the status page test needs Debian's chromium and chromium-driver; "
                    "install them with `apt-get install -y chromium chromium-driver` (bash scripts/test does it "
                    "when run as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1400,800", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP violations show there
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
