"""Fixtures shared by the whole suite. Each emulator's fixtures live in tests/fixtures/, one module each."""

from fixtures.firestore import *  # noqa: F401,F403
from fixtures.firestore_rules import *  # noqa: F401,F403
from fixtures.tasks import *  # noqa: F401,F403
from fixtures.storage import *  # noqa: F401,F403
from fixtures.stack import *  # noqa: F401,F403
from fixtures.gates import *  # noqa: F401,F403
from fixtures.issuer import *  # noqa: F401,F403
from fixtures.node import *  # noqa: F401,F403
