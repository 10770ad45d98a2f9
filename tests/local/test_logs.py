"""`oncetask dev` shows what the parts write, as they write it: every line prefixed by its part, the functions'
JSON lines compacted (severity, message, the job's fields), filtered with --logs."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from fixtures.tasks import wait_until
from oncetask_dev.apiclient import ApiClient
from oncetask_dev.logview import LogView, compact
from rich.console import Console

ONCETASK = str(Path(sys.executable).with_name("oncetask"))


def test_dev_prefixes_each_functions_lines_with_its_part_and_shows_only_the_parts_asked(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [ONCETASK, "dev", "--logs", "api,task_handler", "--api-port", "0", "--task-handler-port", "0",
         "--cleanup-port", "0", "--time-scale", "0.01", "--cleanup-interval", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "300", "ONCETASK_STACK_FILE": str(tmp_path / "stack.json")})
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()

    def line_matching(pattern: str) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            while not lines.empty():
                seen.append(lines.get())
            return next((m for m in map(re.compile(pattern).search, seen) if m), None)
        return wait_until(found, timeout=60, interval=0.05, message=f"a line matching {pattern!r} in {seen}")

    try:
        api_url = line_matching(r"ready: .*Status page: (http://\S+)").group(1)
        job_id = ApiClient(api_url).submit("noop", {"note": "logged"}, f"logs-{uuid.uuid4().hex[:8]}")["job_id"]
        line_matching(rf"^api +\| INFO +job submitted job_id={job_id} job_type=noop")
        line_matching(rf"^task_handler +\| INFO +stage done job_id={job_id} job_type=noop stage=noop attempt=1")
        line_matching(rf"^task_handler +\| INFO +job completed job_id={job_id} job_type=noop attempt=1")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    line_matching("stopped: no process left behind")
    prefixes = {line.split("|", 1)[0].strip() for line in seen if re.match(r"^\w+ +\| ", line)}
    assert prefixes == {"api", "task_handler"}  # the cleanup ran every 0.5 s, the emulators started: not shown
    assert not any('{"severity"' in line for line in seen)  # compacted


def test_a_json_line_is_compacted_and_its_exception_shown_below_it() -> None:
    line = json.dumps({"severity": "WARNING", "message": "stage failed", "time": "2026-01-01T00:00:00+00:00",
                       "logger": "oncetask.processor", "stage": "work", "job_id": "j1", "attempt": 2,
                       "task": "t", "code": "X", "exception": "Traceback (most recent call last):\n  boom"})
    assert compact(line) == ("WARNING", "stage failed", [("job_id", "j1"), ("stage", "work"), ("attempt", "2"),
                                                          ("code", "X")], "Traceback (most recent call last):\n  boom")
    view = LogView(Console(file=io.StringIO()), width=12)
    assert view.render("task_handler", line).plain.splitlines() == [
        "task_handler | WARNING  stage failed job_id=j1 stage=work attempt=2 code=X",
        "             |   Traceback (most recent call last):",
        "             |     boom",
    ]
    assert view.render("firestore", "firestore ready grpc=127.0.0.1:1").plain == \
        "firestore    | firestore ready grpc=127.0.0.1:1"
    assert LogView(Console(), raw=True).render("api", line).plain.endswith(line)  # --raw-logs
