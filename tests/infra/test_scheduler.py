"""The scheduled cleanup: every 15 minutes, the cleanup function's URL, an OIDC token of the scheduler identity."""

from __future__ import annotations

from .terraform import block, load_module, ref, text


def test_scheduler_calls_the_cleanup_function_with_the_scheduler_identity() -> None:
    module = load_module()
    job = module.resource("google_cloud_scheduler_job", "cleanup")
    http = block(job, "http_target")
    assert ref(http["uri"]) == "google_cloudfunctions2_function.cleanup.url"
    assert text(http["http_method"]) == "POST"
    oidc = block(http, "oidc_token")
    assert ref(oidc["service_account_email"]) == "google_service_account.scheduler.email"
    # The audience the function checks (ONCETASK_CLEANUP_AUDIENCE) is its URL, so the token must carry it.
    assert ref(oidc["audience"]) == "google_cloudfunctions2_function.cleanup.url"
    assert "oauth_token" not in http  # OAuth tokens are for Google APIs, not for our own handlers


def test_scheduler_runs_every_15_minutes() -> None:
    module = load_module()
    job = module.resource("google_cloud_scheduler_job", "cleanup")
    assert ref(job["schedule"]) == "var.cleanup_schedule"
    assert module.default("cleanup_schedule") == "*/15 * * * *"
    assert text(job["time_zone"]) == "Etc/UTC"
