"""The `oncetask` command as the runtime distribution installs it: a launcher for the development tools.

The commands (dev, demo, check, bundle, submit, ...) live in the companion distribution oncetask-dev, so a
deployment carries none of them. oncetask-dev registers its command-line entry point in the `oncetask.cli`
entry-point group; the runtime never imports it by name. Without it, this says what to install instead of
failing with a traceback.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

GROUP = "oncetask.cli"
INSTALL_HINT = "pip install 'oncetask[dev]'"


def main() -> int:
    found = entry_points(group=GROUP).select(name="oncetask")
    if not found:
        return _say("the oncetask command comes with the development tools (the oncetask-dev distribution)")
    entry_point = next(iter(found))
    try:
        command = entry_point.load()
    except ModuleNotFoundError as exc:  # installed metadata, but the code or one of its dependencies is missing
        return _say(f"oncetask-dev is installed but cannot import {exc.name!r}")
    return int(command() or 0)


def _say(problem: str) -> int:
    print(f"oncetask: {problem}: install them with\n    {INSTALL_HINT}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
