"""The queue's retry and rate settings, and the retention, come from settings.py's defaults (one source)."""

from __future__ import annotations

import pytest

from oncetask.settings import Settings

from .terraform import Module, block, load_module, ref, text

# Terraform variable -> the Settings field whose default it must equal.
SETTINGS_OF_VARIABLE = {
    "max_attempts": "max_attempts",
    "min_backoff_seconds": "min_backoff_seconds",
    "max_backoff_seconds": "max_backoff_seconds",
    "max_doublings": "max_doublings",
    "max_retry_duration_seconds": "max_retry_duration_seconds",
    "max_dispatches_per_second": "max_dispatches_per_second",
    "max_concurrent_dispatches": "max_concurrent_dispatches",
    "dispatch_deadline_seconds": "dispatch_deadline_seconds",
    "retention_days": "retention_days",
    "queue_name": "queue",
    "region": "location",
}


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


@pytest.mark.parametrize("variable", sorted(SETTINGS_OF_VARIABLE))
def test_variable_default_equals_the_settings_default(module: Module, variable: str) -> None:
    setting = SETTINGS_OF_VARIABLE[variable]
    assert module.default(variable) == Settings.model_fields[setting].default, (
        f"variables.tf {variable} default differs from Settings.{setting}: settings.py is the source of truth")


def test_queue_rate_limits_are_the_variables(module: Module) -> None:
    queue = module.resource("google_cloud_tasks_queue", "jobs")
    limits = block(queue, "rate_limits")
    assert ref(limits["max_dispatches_per_second"]) == "var.max_dispatches_per_second"
    assert ref(limits["max_concurrent_dispatches"]) == "var.max_concurrent_dispatches"
    assert ref(queue["name"]) == "var.queue_name"


def test_queue_retry_config_is_the_variables(module: Module) -> None:
    retry = block(module.resource("google_cloud_tasks_queue", "jobs"), "retry_config")
    assert ref(retry["max_attempts"]) == "var.max_attempts"
    assert ref(retry["max_doublings"]) == "var.max_doublings"
    # Durations are strings of seconds with an "s" suffix in the Cloud Tasks API.
    assert text(retry["min_backoff"]) == "${var.min_backoff_seconds}s"
    assert text(retry["max_backoff"]) == "${var.max_backoff_seconds}s"
    assert text(retry["max_retry_duration"]) == "${var.max_retry_duration_seconds}s"


def test_artifact_bucket_deletes_objects_a_day_after_the_retention_as_the_purges_backstop(module: Module) -> None:
    bucket = module.resource("google_storage_bucket", "artifacts")
    rule = block(bucket, "lifecycle_rule")
    assert text(block(rule, "action")["type"]) == "Delete"
    assert ref(block(rule, "condition")["age"]) == "var.retention_days + 1"
    assert text(bucket["public_access_prevention"]) == "enforced"
