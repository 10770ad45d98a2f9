"""The queue comes from the bundle's manifest, not from variables: its retry and rate settings, and the same
values in the functions' environment, are App.manifest()'s. The runtime settings the module does take as inputs
default to settings.py's defaults."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from oncetask.settings import Settings

from .terraform import FIXTURE_BUNDLE, Module, block, load_module, ref, squash, text

# Module variable -> the Settings field whose default it must equal.
SETTINGS_OF_VARIABLE = {
    "retention_days": "retention_days",
    "lease_ttl_seconds": "lease_ttl_seconds",
    "dispatch_deadline_seconds": "dispatch_deadline_seconds",
    "region": "location",
    "firestore_database": "database",
}
QUEUE_SETTINGS = ("max_attempts", "min_backoff_seconds", "max_backoff_seconds", "max_doublings",
                  "max_retry_duration_seconds", "max_dispatches_per_second", "max_concurrent_dispatches")


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


@pytest.mark.parametrize("variable", sorted(SETTINGS_OF_VARIABLE))
def test_variable_default_equals_the_settings_default(module: Module, variable: str) -> None:
    setting = SETTINGS_OF_VARIABLE[variable]
    assert module.default(variable) == Settings.model_fields[setting].default, (
        f"variables.tf {variable} default differs from Settings.{setting}: settings.py is the source of truth")


def test_no_variable_holds_a_queue_setting(module: Module) -> None:
    """A second copy of the queue's settings could disagree with the manifest the code was bundled with."""
    copies = set(module.variables) & {*QUEUE_SETTINGS, "queue_name", "min_backoff", "max_backoff"}
    assert not copies, f"queue settings as variables: {sorted(copies)}"


def test_the_manifest_is_read_from_the_bundle(module: Module) -> None:
    assert ref(module.locals["manifest"]) == 'jsondecode(file("${var.source_dir}/oncetask.json"))'
    assert squash(ref(module.locals["queues"])) == "{forqueueinlocal.manifest.queues:queue.name=>queue}"
    assert ref(module.locals["queue"]) == "local.manifest.queues[0]"


def test_one_queue_is_created_per_manifest_queue_with_its_settings(module: Module) -> None:
    queue = module.resource("google_cloud_tasks_queue", "jobs")
    assert ref(queue["for_each"]) == "local.queues"
    assert ref(queue["name"]) == "each.value.name"
    limits = block(queue, "rate_limits")
    assert ref(limits["max_dispatches_per_second"]) == "each.value.max_dispatches_per_second"
    assert ref(limits["max_concurrent_dispatches"]) == "each.value.max_concurrent_dispatches"
    retry = block(queue, "retry_config")
    assert ref(retry["max_attempts"]) == "each.value.max_attempts"
    assert ref(retry["max_doublings"]) == "each.value.max_doublings"
    # Durations are strings of seconds with an "s" suffix in the Cloud Tasks API.
    assert text(retry["min_backoff"]) == "${each.value.min_backoff_seconds}s"
    assert text(retry["max_backoff"]) == "${each.value.max_backoff_seconds}s"
    assert text(retry["max_retry_duration"]) == "${each.value.max_retry_duration_seconds}s"


def test_the_functions_get_the_queue_settings_of_the_manifest(module: Module) -> None:
    env = module.locals["module_env"]
    assert ref(env["ONCETASK_QUEUE"]) == "google_cloud_tasks_queue.jobs[local.queue.name].name"
    for setting in QUEUE_SETTINGS:
        assert ref(env[f"ONCETASK_{setting.upper()}"]) == f"tostring(local.queue.{setting})"


def test_the_manifest_is_checked_before_anything_is_created(module: Module) -> None:
    conditions = [squash(ref(p["condition"])) for p in
                  block(module.resource("google_cloud_tasks_queue", "jobs"), "lifecycle")["precondition"]]
    assert "try(local.manifest.manifest_version,0)==1" in conditions
    assert "length(local.manifest.queues)==1" in conditions


def test_artifact_bucket_deletes_objects_a_day_after_the_retention_as_the_purges_backstop(module: Module) -> None:
    bucket = module.resource("google_storage_bucket", "artifacts")
    rule = block(bucket, "lifecycle_rule")
    assert text(block(rule, "action")["type"]) == "Delete"
    assert ref(block(rule, "condition")["age"]) == "var.retention_days + 1"
    assert text(bucket["public_access_prevention"]) == "enforced"


# Code and infrastructure agree ----------------------------------------------------------------------------------

def manifest_fields_read(module: Module) -> dict[str, set[str]]:
    """Which manifest fields the module reads: of a queue (each.value.X in the queue, local.queue.X), of a job
    type (job_type.X), and at the top (local.manifest.X)."""
    everything = json.dumps([list(module.resources.values()), module.locals, module.outputs])
    queue_body = json.dumps(module.resource("google_cloud_tasks_queue", "jobs"))
    return {
        "queue": set(re.findall(r"each\.value\.(\w+)", queue_body)) | set(re.findall(r"local\.queue\.(\w+)", everything)),
        "job_type": set(re.findall(r"\bjob_type\.(\w+)", everything)),
        "top": set(re.findall(r"local\.manifest\.(\w+)", everything)),
    }


def terraform_number(value: float) -> str:
    """How Terraform writes a number into a string ("${30.0}s" is "30s")."""
    return f"{value:g}" if float(value) != int(value) else str(int(value))


def queue_the_module_creates(queue: dict[str, Any]) -> dict[str, Any]:
    """google_cloud_tasks_queue.jobs evaluated for one manifest queue, as the Cloud Tasks API will hold it."""
    return {
        "name": queue["name"],
        "max_dispatches_per_second": queue["max_dispatches_per_second"],
        "max_concurrent_dispatches": queue["max_concurrent_dispatches"],
        "max_attempts": queue["max_attempts"],
        "max_doublings": queue["max_doublings"],
        "min_backoff": f"{terraform_number(queue['min_backoff_seconds'])}s",
        "max_backoff": f"{terraform_number(queue['max_backoff_seconds'])}s",
        "max_retry_duration": f"{terraform_number(queue['max_retry_duration_seconds'])}s",
    }


def reference_manifest() -> dict[str, Any]:
    """What `oncetask bundle --app catalog:app` writes as oncetask.json (the reference deployment's app),
    through JSON as the bundle stores it."""
    import oncetask  # noqa: PLC0415
    from catalog import app  # noqa: PLC0415 - the example project, installed by scripts/setup

    # The catalog's job types under a deployment's default settings, without reconfiguring the shared app object.
    fresh = oncetask.App(app.name, settings=Settings()).include(app)
    return json.loads(json.dumps(fresh.manifest()))


def test_every_manifest_field_the_module_reads_is_in_the_reference_apps_manifest(module: Module) -> None:
    manifest = reference_manifest()
    read = manifest_fields_read(module)
    assert read["queue"] >= {"name", *QUEUE_SETTINGS}
    assert read["queue"] <= set(manifest["queues"][0]), read["queue"] - set(manifest["queues"][0])
    assert read["job_type"] <= set(manifest["job_types"][0]), read["job_type"] - set(manifest["job_types"][0])
    assert read["top"] <= set(manifest), read["top"] - set(manifest)


def test_the_queue_the_module_creates_for_the_reference_app_is_the_one_its_code_retries_with() -> None:
    settings = Settings()
    [queue] = reference_manifest()["queues"]
    assert queue_the_module_creates(queue) == {
        "name": settings.queue,
        "max_dispatches_per_second": settings.max_dispatches_per_second,
        "max_concurrent_dispatches": settings.max_concurrent_dispatches,
        "max_attempts": settings.max_attempts,
        "max_doublings": settings.max_doublings,
        "min_backoff": "30s",
        "max_backoff": "600s",
        "max_retry_duration": "3600s",
    }


def test_the_fixture_bundles_manifest_has_the_shape_of_a_real_one() -> None:
    """The hand-made manifest must not drift from App.manifest(): same fields at every level."""
    fixture = json.loads((FIXTURE_BUNDLE / "oncetask.json").read_text())
    real = reference_manifest()
    assert set(fixture) == set(real)
    assert fixture["manifest_version"] == real["manifest_version"]
    assert {frozenset(q) for q in fixture["queues"]} == {frozenset(q) for q in real["queues"]}
    assert {frozenset(t) for t in fixture["job_types"]} == {frozenset(t) for t in real["job_types"]}


def test_the_reference_apps_stage_timeouts_fit_the_default_dispatch_deadline(module: Module) -> None:
    """The process_task precondition, evaluated for the reference app with the module's default deadline."""
    deadline = module.default("dispatch_deadline_seconds")
    assert all(t["stage_timeout_seconds"] <= deadline for t in reference_manifest()["job_types"])
    precondition = block(module.resource("google_cloudfunctions2_function", "process_task"), "lifecycle")
    condition = squash(ref(precondition["precondition"][0]["condition"]))
    assert condition == ("alltrue([forjob_typeinlocal.manifest.job_types:"
                         "job_type.stage_timeout_seconds<=var.dispatch_deadline_seconds])")
