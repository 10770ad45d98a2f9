"""The queues come from the bundle's manifest, not from variables: one Cloud Tasks queue per manifest queue (every
lane's, shard's and job type's own, and the callbacks queue), each with its retry and rate settings, and no copy of
those settings in the functions' environment (the code declares them). The runtime settings the module does take
as inputs default to settings.py's defaults. (test_manifest.py evaluates the manifest's reading with Terraform.)"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from oncetask.settings import Settings

from .manifests import reference_manifest
from .terraform import MODULE_DIR, Module, block, load_module, ref, squash, text

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
MANIFEST_MODULE = MODULE_DIR / "manifest"


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


@pytest.fixture(scope="module")
def manifest_module() -> Module:
    return load_module(MANIFEST_MODULE)


@pytest.mark.parametrize("variable", sorted(SETTINGS_OF_VARIABLE))
def test_variable_default_equals_the_settings_default(module: Module, variable: str) -> None:
    setting = SETTINGS_OF_VARIABLE[variable]
    assert module.default(variable) == Settings.model_fields[setting].default, (
        f"variables.tf {variable} default differs from Settings.{setting}: settings.py is the source of truth")


def test_no_variable_holds_a_queue_setting(module: Module) -> None:
    """A second copy of the queues' settings or names could disagree with the manifest the code was bundled with."""
    copies = set(module.variables) & {*QUEUE_SETTINGS, "queue_name", "queue_prefix", "callback_queue", "min_backoff",
                                      "max_backoff", "lanes", "schedules"}
    assert not copies, f"queue settings as variables: {sorted(copies)}"


def test_the_manifest_is_read_from_the_bundle_by_the_provider_free_submodule(module: Module,
                                                                            manifest_module: Module) -> None:
    call = module.modules["manifest"]
    assert text(call["source"]) == "./manifest"
    assert text(call["path"]) == "${var.source_dir}/oncetask.json"
    assert ref(call["dispatch_deadline_seconds"]) == "var.dispatch_deadline_seconds"
    assert ref(manifest_module.locals["manifest"]) == "jsondecode(file(var.path))"
    # It reads the manifest and nothing else: no provider, no resource, no data source.
    assert not manifest_module.resources and not manifest_module.data
    assert all("required_providers" not in t for t in manifest_module.terraform)


def test_one_queue_is_created_per_manifest_job_queue_with_its_settings(module: Module) -> None:
    queue = module.resource("google_cloud_tasks_queue", "jobs")
    assert ref(queue["for_each"]) == "module.manifest.job_queues"
    assert ref(queue["name"]) == "each.value.name"
    assert ref(queue["location"]) == "var.region"
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


def test_the_callbacks_queue_is_created_with_its_settings(module: Module) -> None:
    queue = module.resource("google_cloud_tasks_queue", "callbacks")
    source = "module.manifest.callback_queue"
    assert ref(queue["name"]) == f"{source}.name"
    limits = block(queue, "rate_limits")
    retry = block(queue, "retry_config")
    for setting in ("max_dispatches_per_second", "max_concurrent_dispatches"):
        assert ref(limits[setting]) == f"{source}.{setting}"
    for setting in ("max_attempts", "max_doublings"):
        assert ref(retry[setting]) == f"{source}.{setting}"
    for setting in ("min_backoff", "max_backoff", "max_retry_duration"):
        assert text(retry[setting]) == f"${{{source}.{setting}_seconds}}s"


def test_the_functions_get_the_queue_prefix_and_the_callbacks_queue_and_no_queue_settings(module: Module) -> None:
    env = module.locals["module_env"]
    assert ref(env["ONCETASK_QUEUE_PREFIX"]) == "module.manifest.queue_prefix"
    assert ref(env["ONCETASK_CALLBACK_QUEUE"]) == "google_cloud_tasks_queue.callbacks.name"
    copies = {name for name in env if name.removeprefix("ONCETASK_").lower() in {*QUEUE_SETTINGS, "queue"}}
    assert not copies, f"queue settings in the functions' environment: {sorted(copies)}"


def test_the_manifest_is_checked_before_anything_is_created(manifest_module: Module) -> None:
    """Every check is an output precondition of the submodule, evaluated at plan time (test_manifest.py runs them)."""
    conditions = [squash(ref(p["condition"])) for output in manifest_module.outputs.values()
                  for p in output.get("precondition", [])]
    assert "local.version_ok" in conditions
    assert squash(ref(manifest_module.locals["version_ok"])) == "local.version==2"
    for checked in ("local.misnamed_queues", "local.bad_rates", "local.job_types_without_queues",
                    "local.slow_job_types", "local.bad_schedules", "local.callback_queues", "local.unknown_lanes",
                    "local.bad_queue_ids"):
        assert any(checked in condition for condition in conditions), f"no precondition checks {checked}"
    assert "<=500" in squash(ref(manifest_module.locals["bad_rates"]))
    assert ">var.dispatch_deadline_seconds" in squash(ref(manifest_module.locals["slow_job_types"]))


def test_artifact_bucket_deletes_objects_a_day_after_the_retention_as_the_purges_backstop(module: Module) -> None:
    bucket = module.resource("google_storage_bucket", "artifacts")
    rule = block(bucket, "lifecycle_rule")
    assert text(block(rule, "action")["type"]) == "Delete"
    assert ref(block(rule, "condition")["age"]) == "var.retention_days + 1"
    assert text(bucket["public_access_prevention"]) == "enforced"


# Code and infrastructure agree ----------------------------------------------------------------------------------

def manifest_fields_read(manifest_module: Module) -> dict[str, set[str]]:
    """Which manifest fields the submodule reads: of a queue, a job type, a schedule, a lane, and at the top."""
    locals_ = manifest_module.locals
    return {
        "queue": set(re.findall(r"\bqueue\.(\w+)", json.dumps(locals_["queues"]))),
        "job_type": set(re.findall(r"\bjob_type\.(\w+)", json.dumps(locals_["job_types"]))),
        "schedule": set(re.findall(r"\bschedule\.(\w+)", json.dumps(locals_["schedules"]))),
        "lane": set(re.findall(r"\blane\.(\w+)", json.dumps(locals_["shards"]))),
        "top": set(re.findall(r"local\.manifest\.(\w+)", json.dumps([locals_, manifest_module.outputs]))),
    }


def fields_of(items: list[dict[str, Any]]) -> set[str]:
    return set().union(*(set(item) for item in items))


def test_every_manifest_field_the_module_reads_is_in_app_manifest(manifest_module: Module) -> None:
    from .manifests import fixture_manifest_expected  # noqa: PLC0415

    read = manifest_fields_read(manifest_module)
    assert read["queue"] >= {"name", "purpose", "lane", "job_type", "shard", *QUEUE_SETTINGS}
    for manifest in (reference_manifest(), fixture_manifest_expected()):
        assert read["queue"] <= fields_of(manifest["queues"]), read["queue"] - fields_of(manifest["queues"])
        assert read["job_type"] <= fields_of(manifest["job_types"]), read["job_type"] - fields_of(manifest["job_types"])
        assert read["lane"] <= fields_of(manifest["lanes"])
        assert read["top"] <= set(manifest), read["top"] - set(manifest)
    schedules = fixture_manifest_expected()["schedules"]
    assert schedules and read["schedule"] <= fields_of(schedules), read["schedule"] - fields_of(schedules)


def test_the_reference_apps_manifest_has_the_queues_its_code_routes_to() -> None:
    """What the bundle of the reference deployment holds: every lane's queue (and the job types' own), named with
    the settings' prefix, and the callbacks queue the code sends callbacks on."""
    import oncetask  # noqa: PLC0415
    from catalog import app  # noqa: PLC0415

    settings = Settings()
    manifest = reference_manifest()
    assert manifest["manifest_version"] == 2
    fresh = oncetask.App(app.name, settings=settings, lanes=tuple(app.lanes.values())).include(app)
    jobs = {q["name"] for q in manifest["queues"] if q["purpose"] == "jobs"}
    assert jobs == {spec.name for spec in fresh.router().plan()}
    assert all(name.startswith(f"{settings.queue_prefix}-") for name in jobs)
    assert [q["name"] for q in manifest["queues"] if q["purpose"] == "callbacks"] == [settings.callback_queue]


def test_the_reference_apps_stage_timeouts_fit_the_default_dispatch_deadline(module: Module) -> None:
    """The submodule's stage-timeout precondition, for the reference app with the module's default deadline."""
    deadline = module.default("dispatch_deadline_seconds")
    assert all((t["stage_timeout_seconds"] or 0) <= deadline for t in reference_manifest()["job_types"])
