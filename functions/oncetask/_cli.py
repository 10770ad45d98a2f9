"""The `oncetask` command as the runtime distribution installs it: a launcher for the development tools.

The commands (dev, demo, bundle, submit, ...) live in the companion distribution oncetask-dev, so a deployment
carries none of them; without it this says what to install instead of failing with a traceback.
"""

from __future__ import annotations

import sys

INSTALL_HINT = "pip install 'oncetask[dev]'"


def main() -> int:
    try:
        from oncetask_dev.cli import main as dev_main  # noqa: PLC0415 - present only with oncetask-dev
    except ModuleNotFoundError as exc:
        if exc.name != "oncetask_dev" and not (exc.name or "").startswith("oncetask_dev."):
            missing = f"oncetask-dev is installed but cannot import {exc.name!r}"
        else:
            missing = "the oncetask command comes with the development tools (the oncetask-dev distribution)"
        print(f"oncetask: {missing}: install them with\n    {INSTALL_HINT}", file=sys.stderr)
        return 2
    return dev_main()


if __name__ == "__main__":
    sys.exit(main())
