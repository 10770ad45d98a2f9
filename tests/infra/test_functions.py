"""The three functions: entry points that exist in a bundle's main.py, their source (the bundle, zipped without
byte code), runtime, environment, timeouts, ingress, and the API's authentication defaults."""

from __future__ import annotations

import ast
import importlib.util
import re

import pytest

from functions_framework._function_registry import REGISTRY_MAP

from oncetask.settings import Settings

from .terraform import FIXTURE_BUNDLE, MODULE_DIR, REPO, Module, block, load_module, ref, squash, text

FUNCTIONS = {"api": "api", "process_task": "process_task", "cleanup": "cleanup_stale_locks"}  # resource -> entry


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def http_functions_in_main() -> set[str]:
    """The HTTP functions the reference deployment's main.py exposes, as functions-framework finds them (the module
    is imported); a bundle's main.py is written the same way."""
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


def test_the_fixture_bundle_exposes_the_three_entry_points() -> None:
    tree = ast.parse((FIXTURE_BUNDLE / "main.py").read_text())
    targets = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
               for e in node.targets if isinstance(e, ast.Tuple) for t in e.elts if isinstance(t, ast.Name)}
    assert set(FUNCTIONS.values()) <= targets


@pytest.mark.parametrize("resource", sorted(FUNCTIONS))
def test_function_is_built_from_the_zipped_bundle(module: Module, resource: str) -> None:
    build = block(module.resource("google_cloudfunctions2_function", resource), "build_config")
    assert ref(build["runtime"]) == "var.python_runtime"
    assert ref(build["service_account"]) == "google_service_account.build.id"
    source = block(block(build, "source"), "storage_source")
    assert ref(source["object"]) == "local.source_object"
    assert ref(module.locals["source_object"]) == "google_storage_bucket_object.source.name"
    archive = module.data[("archive_file", "source")]
    assert ref(archive["source_dir"]) == "var.source_dir"
    assert text(archive["type"]) == "zip"


def test_the_zip_leaves_byte_code_out_and_is_named_by_its_content(module: Module) -> None:
    archive = module.data[("archive_file", "source")]
    excludes = [text(e) for e in archive["excludes"]]
    # Glob patterns (archive >= 2.5): a directory that matches is skipped whole, at any depth.
    assert "**/__pycache__" in excludes and "**/*.pyc" in excludes
    assert text(archive["output_file_mode"]) == "0644"
    obj = module.resource("google_storage_bucket_object", "source")
    assert text(obj["name"]) == "source-${data.archive_file.source.output_md5}.zip"


def test_source_dir_must_be_a_bundle(module: Module) -> None:
    validation = block(module.variables["source_dir"], "validation")
    for name in ("main.py", "requirements.txt", "oncetask.json", "oncetask/__init__.py"):
        assert f'"{name}"' in validation["condition"]
        assert (FIXTURE_BUNDLE / name).is_file(), f"the fixture bundle lacks {name}"


def test_python_runtime_default_is_supported(module: Module) -> None:
    assert module.default("python_runtime") in {"python311", "python312", "python313"}


def env_of(module: Module, resource: str) -> str:
    service = block(module.resource("google_cloudfunctions2_function", resource), "service_config")
    return ref(service["environment_variables"])


def secret_keys(module: Module, resource: str) -> list[str]:
    service = block(module.resource("google_cloudfunctions2_function", resource), "service_config")
    return [text(block(d["secret_environment_variables"], "content")["key"]) for d in service.get("dynamic", [])
            if "secret_environment_variables" in d]


def test_function_environment_names_are_settings_fields(module: Module) -> None:
    names = {*module.locals["module_env"], *module.locals["api_access_env"], "ONCETASK_TASK_HANDLER_URL",
             *(key for resource in FUNCTIONS for key in secret_keys(module, resource))}
    unknown = names - env_names_of_settings()
    assert not unknown, f"environment variables no Settings field reads: {sorted(unknown)}"
    assert squash(ref(module.locals["common_env"])) == \
        "merge(var.environment_variables,local.api_access_env,local.module_env)"


def test_every_setting_that_names_a_deployed_resource_is_given(module: Module) -> None:
    """A setting left at its local default would point the code at a queue, bucket or identity that is not there."""
    env = set(module.locals["module_env"])
    assert {"ONCETASK_PROJECT_ID", "ONCETASK_LOCATION", "ONCETASK_QUEUE_PREFIX", "ONCETASK_CALLBACK_QUEUE",
            "ONCETASK_DATABASE", "ONCETASK_BUCKET", "ONCETASK_TASKS_SERVICE_ACCOUNT",
            "ONCETASK_SCHEDULER_SERVICE_ACCOUNT", "ONCETASK_TASK_AUDIENCE", "ONCETASK_CLEANUP_AUDIENCE",
            "ONCETASK_API_AUDIENCE"} <= env


@pytest.mark.parametrize("resource", sorted(FUNCTIONS))
def test_the_callback_secret_comes_from_secret_manager_when_one_is_named(module: Module, resource: str) -> None:
    """The API, the task handler and the cleanup all send URL callbacks: each signs them with the secret."""
    service = block(module.resource("google_cloudfunctions2_function", resource), "service_config")
    [dynamic] = [d["secret_environment_variables"] for d in service["dynamic"] if "secret_environment_variables" in d]
    assert ref(dynamic["for_each"]) == "local.callback_secret"
    content = block(dynamic, "content")
    assert text(content["key"]) == "ONCETASK_CALLBACK_SECRET"
    assert ref(content["project_id"]) == "var.project_id"
    assert ref(content["secret"]) == "secret_environment_variables.value.secret_id"
    assert ref(content["version"]) == "secret_environment_variables.value.version"
    # Optional: no secret, no block (and the code refuses URL callbacks with 422).
    assert squash(ref(module.locals["callback_secret"])) == "var.callback_secret==null?[]:[var.callback_secret]"
    assert module.variables["callback_secret"]["default"] is None
    assert "ONCETASK_CALLBACK_SECRET" not in module.locals["module_env"]


def test_the_callback_secret_cannot_be_given_as_a_plain_environment_variable(module: Module) -> None:
    conditions = [squash(ref(v["condition"])) for v in module.variables["environment_variables"]["validation"]]
    assert '!contains(keys(var.environment_variables),"ONCETASK_CALLBACK_SECRET")' in conditions
    version = [v for v in module.variables["callback_secret"]["validation"] if "version" in v["condition"]]
    assert version and "latest" in version[0]["condition"]


@pytest.mark.parametrize(("resource", "env"), [("api", "local.enqueuer_env"), ("cleanup", "local.enqueuer_env"),
                                               ("process_task", "local.handler_env")])
def test_each_function_gets_the_common_environment(module: Module, resource: str, env: str) -> None:
    assert env_of(module, resource) == env
    assert squash(ref(module.locals[env.split(".")[1]])).startswith("merge(local.common_env,{ONCETASK_TASK_HANDLER_URL=")


def test_environment_points_the_code_at_the_deployed_resources(module: Module) -> None:
    env = module.locals["module_env"]
    assert ref(env["ONCETASK_TASKS_SERVICE_ACCOUNT"]) == "google_service_account.tasks.email"
    assert ref(env["ONCETASK_SCHEDULER_SERVICE_ACCOUNT"]) == "google_service_account.scheduler.email"
    assert ref(env["ONCETASK_BUCKET"]) == "google_storage_bucket.artifacts.name"
    assert ref(env["ONCETASK_DATABASE"]) == "local.database"
    assert ref(env["ONCETASK_LEASE_TTL_SECONDS"]) == "tostring(var.lease_ttl_seconds)"
    assert ref(env["ONCETASK_RETENTION_DAYS"]) == "tostring(var.retention_days)"
    assert ref(env["ONCETASK_DISPATCH_DEADLINE_SECONDS"]) == "tostring(var.dispatch_deadline_seconds)"


def test_the_api_audience_is_never_empty(module: Module) -> None:
    """An empty audience would make the API accept no Google ID token at all; a wrong one, tokens minted for another
    service. (Whether tokens are required at all is no deployment's choice: tests/infra/test_access.py.)"""
    env = module.locals["module_env"]
    assert squash(ref(env["ONCETASK_API_AUDIENCE"])) == 'var.api_audience!=""?var.api_audience:local.run_app_urls.api'


@pytest.mark.parametrize(("resource", "identity"), [("api", "api"), ("process_task", "worker"),
                                                     ("cleanup", "cleanup")])
def test_each_function_runs_as_its_own_identity(module: Module, resource: str, identity: str) -> None:
    service = block(module.resource("google_cloudfunctions2_function", resource), "service_config")
    assert ref(service["service_account_email"]) == f"google_service_account.{identity}.email"


def test_task_handler_timeout_covers_the_dispatch_deadline_and_its_cap_every_job_queues_concurrency(
        module: Module) -> None:
    service = block(module.resource("google_cloudfunctions2_function", "process_task"), "service_config")
    assert ref(service["timeout_seconds"]) == "var.dispatch_deadline_seconds"
    # One request per instance: the instance cap must admit every concurrent dispatch of every job queue (else
    # 429s burn deliveries), unless the deployer caps it for a quota.
    assert ref(service["max_instance_count"]) == "local.task_handler_max_instances"
    assert squash(ref(module.locals["task_handler_max_instances"])) == (
        "var.task_handler_max_instances!=null?var.task_handler_max_instances:module.manifest.job_concurrency")
    assert module.variables["task_handler_max_instances"]["default"] is None
    manifest = load_module(MODULE_DIR / "manifest")
    assert squash(ref(manifest.locals["job_concurrency"])) == (
        "sum(concat([0],[forqueueinvalues(local.job_queues):queue.max_concurrent_dispatches]))")


@pytest.mark.parametrize("resource", ["process_task", "cleanup"])
def test_service_to_service_targets_use_private_ingress(module: Module, resource: str) -> None:
    service = block(module.resource("google_cloudfunctions2_function", resource), "service_config")
    assert ref(service["ingress_settings"]) == "var.private_ingress"
    assert module.default("private_ingress") == "ALLOW_INTERNAL_ONLY"


def test_the_apis_of_every_managed_service_are_enabled(module: Module) -> None:
    services = ref(module.resource("google_project_service", "apis")["for_each"])
    enabled = set(re.findall(r'"([a-z]+\.googleapis\.com)"', services))
    needed = {"cloudfunctions.googleapis.com", "run.googleapis.com", "cloudbuild.googleapis.com",
              "artifactregistry.googleapis.com", "cloudtasks.googleapis.com", "cloudscheduler.googleapis.com",
              "firestore.googleapis.com", "storage.googleapis.com", "iam.googleapis.com",
              "cloudresourcemanager.googleapis.com"}  # data.google_project reads the project number
    assert needed <= enabled, f"APIs not enabled: {sorted(needed - enabled)}"
