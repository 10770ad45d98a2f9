"""`python -m oncetask_emulators.firestore`: the same as the `oncetask-firestore-emulator` console script."""

import sys

from .server import main

sys.exit(main())
