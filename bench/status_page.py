"""What one open status page costs: API requests per minute, by endpoint, and the Firestore reads behind them.

    .venv/bin/python bench/status_page.py [--seconds 60] [--jobs 60]

Starts the local stack (`LocalStack`, as `oncetask dev` does), submits `--jobs` no-op jobs and one test.fanout job
(2 children), opens the page in headless Chromium (Debian's chromium and chromium-driver) and, for each view (the
job list with the figures, as the local development caller, who sees them as an operator does; then the fanout
job's detail), counts the page's fetches (the Resource Timing entries the browser records) over `--seconds`.
Then it asks each endpoint once itself for what one answer costs in Firestore reads: GET /jobs reads one document
per job listed; GET /stats and GET /stats/timeline say theirs (`cost.firestore_reads`; billed reads, one per 1,000
index entries a count matched, at least one per count); GET /jobs/{id} reads one, and /children one per ended child.
A hidden tab makes no request: the page stops polling (tests/browser/test_status_page_views.py proves it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from rich.console import Console
from rich.table import Table
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from oncetask_dev.apiclient import ApiClient
from oncetask_dev.stack import LocalStack, StackOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine  # noqa: E402 - bench/machine.py, beside this script

console = Console(width=150)
FETCHES = """return performance.getEntriesByType('resource').filter((e) => e.initiatorType === 'fetch')
                .map((e) => e.name);"""


def chromium(profile: str) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--window-size=1400,800", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def endpoint(path: str) -> str:
    """/jobs/<id>/children -> /jobs/{id}/children: the counts are by endpoint."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "jobs":
        parts[1] = "{id}"
    return "/" + "/".join(parts)


def count(browser: WebDriver, seconds: float) -> tuple[Counter[str], int | None]:
    """The page's requests by endpoint over `seconds`, and the page size its GET /jobs asked for."""
    browser.execute_script("performance.setResourceTimingBufferSize(10000); performance.clearResourceTimings();")
    time.sleep(seconds)
    urls = [urlparse(url) for url in browser.execute_script(FETCHES)]
    limits = [int(parse_qs(url.query)["limit"][0]) for url in urls if url.path.rstrip("/").endswith("/jobs")]
    return Counter(endpoint(url.path) for url in urls), (limits[0] if limits else None)


def wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the stack did not get there in time")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--jobs", type=int, default=60)
    args = parser.parse_args()
    console.print(f"[bold]status page cost[/] · {machine.summary()} · the machine is shared with other work")

    stack = LocalStack(StackOptions(cleanup_interval=3600.0))
    stack.start()
    profile = tempfile.mkdtemp(prefix="status-page-bench-")
    browser = None
    try:
        api = ApiClient(stack.api_url, timeout=30)
        ids = [api.submit("noop", {"note": str(i)})["job_id"] for i in range(args.jobs)]
        fanout = api.submit("test.fanout", {"parts": 2})["job_id"]
        wait(lambda: all(api.get(i)["state"] == "completed" for i in (*ids[-1:], fanout)))

        browser = chromium(profile)
        views = {"list (with figures)": "", "detail (a job with 2 children)": f"#/jobs/{fanout}"}
        counted: dict[str, Counter[str]] = {}
        page_size = None
        for name, fragment in views.items():
            browser.get(stack.api_url.rstrip("/") + "/" + fragment)
            time.sleep(3)  # its first load (config, openapi, me) is not part of the steady state
            counted[name], limit = count(browser, args.seconds)
            page_size = page_size or limit

        listed = len(api.list(limit=page_size or 25)["jobs"])  # a document read per job listed
        stats = api._call("GET", "stats")["cost"]["firestore_reads"]
        timeline = api._call("GET", "stats/timeline", params={"minutes": 60, "buckets": 12})["cost"]["firestore_reads"]
        children = api._call("GET", f"jobs/{fanout}/children")["stages"][0]["ended"]
        reads = {"/jobs": listed, "/stats": stats, "/stats/timeline": timeline, "/jobs/{id}": 1,
                 "/jobs/{id}/children": 1 + children}  # the parent, then one per ended child

        table = Table(title=f"one open page, per minute (counted over {args.seconds:.0f} s)")
        for column in ("view", "endpoint", "requests/min", "Firestore reads each", "Firestore reads/min"):
            table.add_column(column)
        for name, counts in counted.items():
            total_requests = total_reads = 0.0
            for path, n in sorted(counts.items()):
                per_minute = n * 60 / args.seconds
                total_requests += per_minute
                total_reads += per_minute * reads.get(path, 0)
                table.add_row(name, path, f"{per_minute:.1f}", str(reads.get(path, "–")),
                              f"{per_minute * reads.get(path, 0):.0f}")
            table.add_row(name, "[bold]all[/]", f"[bold]{total_requests:.1f}[/]", "", f"[bold]{total_reads:.0f}[/]")
        console.print(table)
    finally:
        if browser is not None:
            browser.quit()
        stack.stop()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
