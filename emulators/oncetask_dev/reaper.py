"""Ends a local stack's processes when the process that started them dies without stopping them (kill -9, a
test runner's hard timeout): `python -m oncetask_dev.reaper`.

The stack starts the reaper first, in a session of its own, and writes each child's process group id to the
reaper's stdin (`-ID` when it stopped that group itself). The pipe's end is the signal: when the stack exits,
however it exits, the reaper reads EOF and sends every group still alive SIGTERM, then SIGKILL after a grace
period. After a clean stop nothing is alive and it simply exits.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_SECONDS = 5.0


def alive(pgid: int) -> bool:
    """Whether any process of the group is left (zombies count until reaped)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_groups(groups: set[int], grace: float = GRACE_SECONDS) -> None:
    for pgid in groups:
        signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(alive(pgid) for pgid in groups) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pgid in groups:
        signal_group(pgid, signal.SIGKILL)


def signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def main() -> int:
    # Ctrl-C in the terminal belongs to the stack, which stops its children in order; the reaper waits for EOF.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        word = line.strip()
        if word.startswith("-") and word[1:].isdigit():
            groups.discard(int(word[1:]))  # the stack stopped it: its id may soon be another process's
        elif word.isdigit():
            groups.add(int(word))
    end_groups({pgid for pgid in groups if alive(pgid)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
