# Every 15 minutes (seed 000) the cleanup frees lapsed leases, re-enqueues jobs whose task was lost and
# purges expired jobs. Scheduler signs an ID token as the scheduler identity, whose only grant is invoking it.
resource "google_cloud_scheduler_job" "cleanup" {
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
    uri         = google_cloudfunctions2_function.cleanup.url

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloudfunctions2_function.cleanup.url
    }
  }

  depends_on = [google_cloud_run_service_iam_member.scheduler_invokes_cleanup]
}
