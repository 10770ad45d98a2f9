"""`python -m oncetask_emulators.tasks`: the same as the `oncetask-tasks-emulator` console script."""

import sys

from .server import main

sys.exit(main())
