# Every 15 minutes (seed 000) the cleanup frees lapsed leases, re-enqueues jobs whose task was lost and purges
# expired jobs. Scheduler signs an ID token as the scheduler identity, whose only grant is invoking the cleanup.
resource "google_cloud_scheduler_job" "cleanup" {
  project   = var.project_id
  name      = "${var.name_prefix}-cleanup"
  region    = var.region
  schedule  = var.cleanup_schedule
  time_zone = "Etc/UTC"
  # Within the function's timeout; a missed run is not retried, the next one comes in 15 minutes.
  attempt_deadline = "540s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    # The run.app URI the provider reports: Scheduler traffic to it counts as internal, so the cleanup's
    # internal-only ingress admits it (the cloudfunctions.net URL would not be).
    uri = google_cloudfunctions2_function.cleanup.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      # What the cleanup checks (ONCETASK_CLEANUP_AUDIENCE): its deterministic run.app URL.
      audience = local.run_app_urls.cleanup
    }
  }

  depends_on = [google_cloud_run_service_iam_member.scheduler_invokes_cleanup]
}
