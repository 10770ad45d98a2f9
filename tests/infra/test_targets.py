"""Cloud Tasks and Cloud Scheduler call the functions' run.app URLs (which internal ingress admits from them) and
put a run.app URL in their OIDC tokens' audience (the one the receiving function checks); the cloudfunctions.net
URL (the functions' `url` attribute) is used nowhere."""

from __future__ import annotations

import json
import re

import pytest

from oncetask.settings import Settings

from .terraform import Module, block, load_module, ref, squash, text

RUN_APP_URL = "https://${name}-${data.google_project.this.number}.${var.region}.run.app"


@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def test_each_functions_deterministic_run_app_url_is_derived_as_cloud_run_documents_it(module: Module) -> None:
    urls = squash(ref(module.locals["run_app_urls"]))
    assert urls == squash(f'{{for key, name in local.function_names : key => "{RUN_APP_URL}"}}')
    assert module.resources.get(("google_project", "this")) is None and ("google_project", "this") in module.data


def test_scheduler_calls_the_cleanups_run_app_uri_with_the_audience_it_checks(module: Module) -> None:
    job = module.resource("google_cloud_scheduler_job", "cleanup")
    http = block(job, "http_target")
    assert ref(http["uri"]) == "google_cloudfunctions2_function.cleanup.service_config[0].uri"
    assert text(http["http_method"]) == "POST"
    oidc = block(http, "oidc_token")
    assert ref(oidc["service_account_email"]) == "google_service_account.scheduler.email"
    assert ref(oidc["audience"]) == "local.run_app_urls.cleanup"
    assert ref(module.locals["module_env"]["ONCETASK_CLEANUP_AUDIENCE"]) == "local.run_app_urls.cleanup"
    assert "oauth_token" not in http  # OAuth tokens are for Google APIs, not for our own handlers


def test_tasks_are_sent_to_the_handlers_run_app_uri_with_the_audience_it_checks(module: Module) -> None:
    enqueuers = squash(ref(module.locals["enqueuer_env"]))
    assert enqueuers == squash("merge(local.common_env, {ONCETASK_TASK_HANDLER_URL = "
                               "google_cloudfunctions2_function.process_task.service_config[0].uri})")
    # The audience the code puts on tasks and the handler checks (settings.effective_task_audience).
    assert ref(module.locals["module_env"]["ONCETASK_TASK_AUDIENCE"]) == "local.run_app_urls.process_task"
    assert "task_audience" in Settings.model_fields


@pytest.mark.parametrize("resource", ["api", "process_task", "cleanup"])
def test_each_function_fails_the_apply_unless_it_reports_a_run_app_url_of_its_own(module: Module,
                                                                                  resource: str) -> None:
    lifecycle = block(module.resource("google_cloudfunctions2_function", resource), "lifecycle")
    condition = squash(ref(lifecycle["postcondition"][0]["condition"]))
    assert condition.startswith(f"self.service_config[0].uri==local.run_app_urls.{resource}||")
    assert f"^https://${{local.function_names.{resource}}}-" in condition and r"\\.a\\.run\\.app$" in condition


def test_the_cloudfunctions_net_url_is_used_nowhere(module: Module) -> None:
    everything = json.dumps([list(module.resources.values()), module.locals, module.outputs])
    assert "cloudfunctions.net" not in everything
    assert not re.search(r"google_cloudfunctions2_function\.\w+\.url\b", everything)


def test_scheduler_runs_every_15_minutes_in_utc(module: Module) -> None:
    job = module.resource("google_cloud_scheduler_job", "cleanup")
    assert ref(job["schedule"]) == "var.cleanup_schedule"
    assert module.default("cleanup_schedule") == "*/15 * * * *"
    assert text(job["time_zone"]) == "Etc/UTC"
