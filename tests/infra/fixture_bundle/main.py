"""A hand-made bundle for the Terraform tests, laid out as `oncetask bundle` writes one (never deployed)."""

from shop import app

api, process_task, cleanup_stale_locks = app.entry_points()
