"""The local stack's output as `oncetask dev` shows it: every line of every part, prefixed by the part.

    api          | INFO     job submitted  job_id=3f2a… job_type=noop task=projects/…/tasks/3f2a…-g1
    task_handler | INFO     stage done  job_id=3f2a… stage=work attempt=1
    firestore    | firestore ready grpc=127.0.0.1:40411 http=127.0.0.1:36519

The functions write JSON lines (oncetask.logs, as Cloud Logging wants them); those are shown compactly (severity,
message, the job's fields, a traceback below) unless `raw`. Anything else is shown as written.
`compact()` is the pure part; `LogView` prints, from the threads that drain the children, one line at a time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.text import Text

# Shown first, in this order, when a line has them; the rest follow sorted. Never shown: what every line has.
LEADING_FIELDS = ("job_id", "job_type", "stage", "attempt")
HIDDEN_FIELDS = frozenset({"severity", "message", "time", "logger", "exception", "stack_trace", "@type",
                           "serviceContext", "logging.googleapis.com/trace", "logging.googleapis.com/spanId",
                           "task", "component"})  # the task name repeats the job id; --raw-logs shows all
SEVERITY_STYLE = {"DEBUG": "dim", "INFO": "green", "WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}
PART_STYLE = {"api": "cyan", "task_handler": "magenta", "cleanup": "blue", "firestore": "yellow", "tasks": "green",
              "storage": "bright_black"}


def compact(line: str) -> tuple[str, str, list[tuple[str, str]], str | None] | None:
    """A JSON log line as (severity, message, [(field, value)...], traceback or None); None if it is not one."""
    if not line.startswith("{"):
        return None
    try:
        entry: Any = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or "message" not in entry:
        return None
    fields = [(k, entry[k]) for k in LEADING_FIELDS if k in entry]
    fields += sorted((k, v) for k, v in entry.items() if k not in HIDDEN_FIELDS and k not in LEADING_FIELDS)
    rendered = [(k, v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for k, v in fields]
    exception = entry.get("stack_trace") or entry.get("exception")  # Error Reporting's field, or an older line's
    return str(entry.get("severity", "DEFAULT")), str(entry["message"]), rendered, \
        exception if isinstance(exception, str) else None


class LogView:
    """Prints `(part, line)` pairs from the stack (its `on_output`), for the parts in `parts` (None: all)."""

    def __init__(self, console: Console, parts: Iterable[str] | None = None, raw: bool = False,
                 width: int = 12) -> None:
        self.console = console
        self.parts = None if parts is None else frozenset(parts)
        self.raw = raw
        self.width = width  # the prefix column: the longest part name
        self._lock = threading.Lock()  # lines from several children never interleave mid-line

    def __call__(self, part: str, line: str) -> None:
        if self.parts is not None and part not in self.parts:
            return
        text = self.render(part, line)
        with self._lock:
            self.console.print(text, soft_wrap=True, highlight=False)

    def render(self, part: str, line: str) -> Text:
        prefix = Text(f"{part:<{self.width}} | ", style=PART_STYLE.get(part, "white"))
        parsed = None if self.raw else compact(line)
        if parsed is None:
            return prefix + Text(line)
        severity, message, fields, exception = parsed
        text = prefix + Text(f"{severity:<8} ", style=SEVERITY_STYLE.get(severity, "")) + Text(message)
        for key, value in fields:
            text += Text(f" {key}=", style="dim") + Text(value)
        if exception:
            for exception_line in exception.splitlines():
                text += Text("\n") + Text(" " * self.width + " | ", style=PART_STYLE.get(part, "white")) + \
                    Text("  " + exception_line, style="red")
        return text


__all__ = ["LogView", "compact"]
