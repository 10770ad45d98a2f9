# The one queue. Retry and rate settings are variables whose defaults equal settings.py's, so the handler's
# "was this the last attempt?" decision (settings.max_attempts) and the queue always agree.
resource "google_cloud_tasks_queue" "jobs" {
  name     = var.queue_name
  location = var.region

  rate_limits {
    max_dispatches_per_second = var.max_dispatches_per_second
    max_concurrent_dispatches = var.max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = var.max_attempts
    min_backoff        = "${var.min_backoff_seconds}s"
    max_backoff        = "${var.max_backoff_seconds}s"
    max_doublings      = var.max_doublings
    max_retry_duration = "${var.max_retry_duration_seconds}s"
  }

  depends_on = [google_project_service.apis]
}
