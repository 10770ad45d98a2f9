"""The reference deployment's three Cloud Run functions: the catalog example's app (examples/catalog), served by
oncetask's entry points. A project of your own has the same two lines with its own app.

- api:                 the public HTTP API (POST/GET /jobs, retry, cancel, healthz, openapi.json, the status page)
- process_task:        the Cloud Tasks target (one delivery of one job's task)
- cleanup_stale_locks: the Cloud Scheduler target (every 15 minutes)
"""

from catalog import app

api, process_task, cleanup_stale_locks = app.entry_points()
