"""Cloud Tasks and Cloud Scheduler call the functions' run.app URLs (which internal ingress admits from them) and
put a run.app URL in their OIDC tokens' audience (the one the receiving function checks); the cloudfunctions.net
URL (the functions' `url` attribute) is used nowhere. Every schedule of the app is a Cloud Scheduler job calling
the cleanup's /schedules/{name}."""

from __future__ import annotations

import json
import re

import pytest

from oncetask.settings import Settings

from .terraform import REPO, Module, block, load_module, ref, squash, text

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


def test_the_handler_sends_its_own_tasks_to_its_deterministic_run_app_url(module: Module) -> None:
    """The handler creates tasks too (children, next stages, sleeps, wake-ups, follow-ups): they go to the handler,
    at the URL that is also their audience, which it knows before it exists."""
    handler = squash(ref(module.locals["handler_env"]))
    assert handler == squash("merge(local.common_env, {ONCETASK_TASK_HANDLER_URL = local.run_app_urls.process_task})")
    assert ref(module.locals["module_env"]["ONCETASK_TASK_AUDIENCE"]) == "local.run_app_urls.process_task"


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


def test_every_schedule_of_the_app_is_a_scheduler_job_calling_the_cleanups_schedule_path(module: Module) -> None:
    job = module.resource("google_cloud_scheduler_job", "schedules")
    assert ref(job["for_each"]) == "module.manifest.schedules"
    assert ref(job["schedule"]) == "each.value.cron"
    assert ref(job["time_zone"]) == "each.value.time_zone"
    http = block(job, "http_target")
    assert text(http["http_method"]) == "POST"
    # The route the cleanup function serves (taskhandler.cleanup_stale_locks: /schedules/{name}).
    assert text(http["uri"]) == "${google_cloudfunctions2_function.cleanup.service_config[0].uri}/schedules/${each.key}"
    assert '"/schedules/"' in (REPO / "functions" / "oncetask" / "taskhandler.py").read_text()
    oidc = block(http, "oidc_token")
    assert ref(oidc["service_account_email"]) == "google_service_account.scheduler.email"
    # The audience the cleanup checks is its own URL, not the path's.
    assert ref(oidc["audience"]) == "local.run_app_urls.cleanup"
    assert job["depends_on"] == ["${google_cloud_run_service_iam_member.scheduler_invokes_cleanup}"]


def test_a_schedules_failed_call_is_retried_since_its_scheduled_time_makes_the_retry_harmless(module: Module) -> None:
    retry = block(module.resource("google_cloud_scheduler_job", "schedules"), "retry_config")
    assert retry["retry_count"] >= 1
    assert text(retry["min_backoff_duration"]).endswith("s") and text(retry["max_backoff_duration"]).endswith("s")
    # The function keys the run's job by X-CloudScheduler-ScheduleTime, which a retry of the same run repeats.
    assert "X-CloudScheduler-ScheduleTime" in (REPO / "functions" / "oncetask" / "taskhandler.py").read_text()


def test_two_stacks_schedules_of_the_same_name_do_not_collide(module: Module) -> None:
    names = {name: text(job["name"]) for name, job in module.of_type("google_cloud_scheduler_job").items()}
    assert names == {"cleanup": "${var.name_prefix}-cleanup", "schedules": "${var.name_prefix}-schedule-${each.key}"}
    # A schedule called "cleanup" is "<prefix>-schedule-cleanup": it cannot meet the cleanup's own job either.
    prefix = block(module.variables["name_prefix"], "validation")["condition"]
    assert "{1,14}" in prefix  # <prefix>-schedule-<63 characters> stays within Scheduler's 500
