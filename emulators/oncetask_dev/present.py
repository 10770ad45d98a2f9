"""How jobs read in a terminal: shared by the CLI and the demo."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


STATE_STYLE = {"completed": "green", "failed": "red", "running": "yellow", "retrying": "dark_orange",
               "queued": "blue", "cancelled": "dim"}


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


def last_error(job: dict[str, Any]) -> str:
    errors = job.get("errors") or []
    if not errors:
        return ""
    e = errors[-1]
    return f"{e['code']}" + (f" in {e['stage']}" if e.get("stage") else "") + f": {e['message']}"
