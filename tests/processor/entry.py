"""What functions-framework serves in the processor tests (it loads this file by path, as a deployment's main.py):
the entry points of whichever app the running test installed (`served.use`)."""

from processor.served import api, cleanup_stale_locks, process_task

__all__ = ["api", "process_task", "cleanup_stale_locks"]
