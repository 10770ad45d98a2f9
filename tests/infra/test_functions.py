"""The three functions: entry points that exist, their source, runtime, environment, timeouts and ingress."""

from __future__ import annotations

import ast
import importlib.util
import re

import pytest

from functions_framework._function_registry import REGISTRY_MAP

from oncetask.settings import Settings

from .terraform import REPO, Module, block, load_module, ref, text

FUNCTIONS = {"api": "api", "process_task": "process_task", "cleanup": "cleanup_stale_locks"}  # resource -> entry


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def http_functions_in_main() -> set[str]:
    """The HTTP functions functions/main.py exposes, as functions-framework finds them (the module is imported)."""
    spec = importlib.util.spec_from_file_location("reference_main", REPO / "functions" / "main.py")
    assert spec is not None and spec.loader is not None
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    return {name for name, value in vars(main).items()
            if callable(value) and REGISTRY_MAP.get(getattr(value, "__name__", "")) == "http"}


def env_names_of_settings() -> set[str]:
    """Every environment variable name the Settings class reads."""
    names = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if alias is None:
            names.add(f"ONCETASK_{name.upper()}")
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.update(c for c in alias.choices if isinstance(c, str))
    return names


def test_exactly_the_three_functions_are_deployed(module: Module) -> None:
    assert set(module.of_type("google_cloudfunctions2_function")) == set(FUNCTIONS)


@pytest.mark.parametrize("resource", sorted(FUNCTIONS))
def test_entry_point_is_an_http_function_in_main(module: Module, resource: str) -> None:
    build = block(module.resource("google_cloudfunctions2_function", resource), "build_config")
    entry_point = text(build["entry_point"])
    assert entry_point == FUNCTIONS[resource]
    assert entry_point in http_functions_in_main(), f"functions/main.py exposes no HTTP function {entry_point}"


@pytest.mark.parametrize("resource", sorted(FUNCTIONS))
def test_function_is_built_from_the_uploaded_functions_zip(module: Module, resource: str) -> None:
    build = block(module.resource("google_cloudfunctions2_function", resource), "build_config")
    assert ref(build["runtime"]) == "var.python_runtime"
    source = block(block(build, "source"), "storage_source")
    assert ref(source["object"]) == "google_storage_bucket_object.functions.name"
    archive = module.data[("archive_file", "functions")]
    assert text(archive["source_dir"]) == "${local.repo_root}/functions"
    assert text(archive["type"]) == "zip"


def test_python_runtime_default_is_supported(module: Module) -> None:
    assert module.default("python_runtime") in {"python311", "python312"}


@pytest.mark.parametrize("resource", sorted(FUNCTIONS))
def test_function_environment_names_are_settings_fields(module: Module, resource: str) -> None:
    service = block(module.resource("google_cloudfunctions2_function", resource), "service_config")
    assert ref(service["environment_variables"]) == "local.function_env"
    unknown = set(module.locals["function_env"]) - env_names_of_settings()
    assert not unknown, f"environment variables no Settings field reads: {sorted(unknown)}"


def test_environment_points_the_code_at_the_deployed_resources(module: Module) -> None:
    env = module.locals["function_env"]
    assert ref(env["ONCETASK_TASK_HANDLER_URL"]) == "local.function_urls.process_task"
    assert ref(env["ONCETASK_CLEANUP_AUDIENCE"]) == "local.function_urls.cleanup"
    assert ref(env["ONCETASK_TASKS_SERVICE_ACCOUNT"]) == "google_service_account.tasks.email"
    assert ref(env["ONCETASK_SCHEDULER_SERVICE_ACCOUNT"]) == "google_service_account.scheduler.email"
    assert ref(env["ONCETASK_QUEUE"]) == "google_cloud_tasks_queue.jobs.name"
    assert ref(env["ONCETASK_BUCKET"]) == "google_storage_bucket.artifacts.name"
    # The handler's "last attempt?" decision must see the queue's real max_attempts.
    assert ref(env["ONCETASK_MAX_ATTEMPTS"]) == "tostring(var.max_attempts)"


@pytest.mark.parametrize(("resource", "identity"), [("api", "api"), ("process_task", "worker"),
                                                     ("cleanup", "cleanup")])
def test_each_function_runs_as_its_own_identity(module: Module, resource: str, identity: str) -> None:
    service = block(module.resource("google_cloudfunctions2_function", resource), "service_config")
    assert ref(service["service_account_email"]) == f"google_service_account.{identity}.email"


def test_task_handler_timeout_covers_the_dispatch_deadline(module: Module) -> None:
    service = block(module.resource("google_cloudfunctions2_function", "process_task"), "service_config")
    assert ref(service["timeout_seconds"]) == "var.dispatch_deadline_seconds"
    # One request per instance: the instance cap must admit every concurrent dispatch (else 429s burn attempts).
    assert ref(service["max_instance_count"]) == "var.max_concurrent_dispatches"


@pytest.mark.parametrize("resource", ["process_task", "cleanup"])
def test_service_to_service_targets_use_private_ingress(module: Module, resource: str) -> None:
    service = block(module.resource("google_cloudfunctions2_function", resource), "service_config")
    assert ref(service["ingress_settings"]) == "var.private_ingress"
    assert module.default("private_ingress") == "ALLOW_INTERNAL_ONLY"


@pytest.mark.parametrize("resource", sorted(FUNCTIONS))
def test_function_url_is_checked_against_the_derived_one(module: Module, resource: str) -> None:
    function = module.resource("google_cloudfunctions2_function", resource)
    assert ref(function["name"]) == f"local.function_names.{resource}"
    condition = ref(block(block(function, "lifecycle"), "postcondition")["condition"])
    assert condition == f"self.url == local.function_urls.{resource}"


def test_the_apis_of_every_managed_service_are_enabled(module: Module) -> None:
    services = ref(module.resource("google_project_service", "apis")["for_each"])
    enabled = set(re.findall(r'"([a-z]+\.googleapis\.com)"', services))
    needed = {"cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
              "artifactregistry.googleapis.com", "cloudtasks.googleapis.com", "cloudscheduler.googleapis.com",
              "firestore.googleapis.com", "storage.googleapis.com", "iam.googleapis.com"}
    assert needed <= enabled, f"APIs not enabled: {sorted(needed - enabled)}"
