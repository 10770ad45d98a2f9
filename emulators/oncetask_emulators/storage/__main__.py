"""`python -m oncetask_emulators.storage`: the same as the `oncetask-storage-emulator` console script."""

import sys

from .server import main

sys.exit(main())
