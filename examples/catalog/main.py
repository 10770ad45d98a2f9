"""The catalog's Cloud Run functions: the three entry points of its oncetask app."""

from catalog import app

api, process_task, cleanup_stale_locks = app.entry_points()
