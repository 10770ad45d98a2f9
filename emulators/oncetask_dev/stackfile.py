"""Where a running `oncetask dev` says what runs where, so the CLI and the demo can find it.

`oncetask dev` writes `.oncetask/stack.json` (in the directory it was started from, or ONCETASK_STACK_FILE) when
every part answers, and removes it when it stops. Commands that need more than the API URL (the demo uploads to
the bucket, `cleanup` creates a scheduler task) read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT = Path(".oncetask") / "stack.json"


def path() -> Path:
    return Path(os.environ.get("ONCETASK_STACK_FILE") or DEFAULT)


def write(description: dict[str, Any], target: Path | None = None) -> Path:
    target = target or path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(description, indent=2))
    tmp.replace(target)  # a reader never sees half a file
    return target


def read(target: Path | None = None) -> dict[str, Any] | None:
    """The running stack's description, or None when there is none (or its process is gone)."""
    target = target or path()
    try:
        description = json.loads(target.read_text())
    except (OSError, ValueError):
        return None
    if not _alive(int(description.get("pid", 0))):
        return None  # left behind by a stack that was killed: its ports may belong to someone else now
    return description


def remove(target: Path | None = None) -> None:
    (target or path()).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
