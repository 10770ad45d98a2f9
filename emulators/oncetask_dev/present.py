"""How jobs read in a terminal: shared by the CLI and the demo."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


STATE_STYLE = {"completed": "green", "failed": "red", "running": "yellow", "retrying": "dark_orange",
               "queued": "blue", "cancelled": "dim", "scheduled": "cyan", "waiting": "magenta"}
STATE_ORDER = ("queued", "scheduled", "running", "waiting", "retrying", "completed", "failed", "cancelled")


def state(name: str) -> str:
    """The state as rich markup, coloured."""
    return f"[{STATE_STYLE.get(name, 'white')}]{name}[/]"


def stage_names(job: dict[str, Any], names: list[str] | None = None) -> list[str]:
    """`names` (default: the job's completed stages) in the order its job type runs them (the API sorts them)."""
    names = list(job.get("completed_stages", [])) if names is None else names
    order = list(job.get("stages") or ())  # the job type's stages, in order, as the API says
    return sorted(names, key=lambda n: (order.index(n), n) if n in order else (len(order), n))


def age(iso: str | None, now: datetime | None = None) -> str:
    """'4 s', '3 min 2 s', '2 h 5 min' since an ISO timestamp ('' if none)."""
    if not iso:
        return ""
    seconds = max(0.0, ((now or datetime.now(timezone.utc)) - datetime.fromisoformat(iso)).total_seconds())
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"


def seconds(value: float | None) -> str:
    """'850 ms', '12.5 s', '3 min 2 s' ('' for None)."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value // 60:.0f} min {value % 60:.0f} s"
    return f"{value // 3600:.0f} h {value % 3600 // 60:.0f} min"


def progress(report: dict[str, Any]) -> str:
    """'40% resizing 3 of 8 (stage resize, 2 s ago)'."""
    text = f"{report.get('fraction', 0) * 100:.0f}%"
    if report.get("message"):
        text += f" {report['message']}"
    where = [f"stage {report['stage']}"] if report.get("stage") else []
    if report.get("at"):
        where.append(f"{age(report['at'])} ago")
    return text + (f" ({', '.join(where)})" if where else "")


def last_error(job: dict[str, Any]) -> str:
    errors = job.get("errors") or []
    if not errors:
        return ""
    e = errors[-1]
    return f"{e['code']}" + (f" in {e['stage']}" if e.get("stage") else "") + f": {e['message']}"
