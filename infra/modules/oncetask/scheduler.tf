# Cloud Scheduler calls the cleanup function, the one target that takes Scheduler's OIDC token (the scheduler
# identity's only grant is invoking it; the function checks the audience and the email again). Both kinds of job
# call its run.app URI: Scheduler traffic to it counts as internal, so the cleanup's internal-only ingress admits
# it (the cloudfunctions.net URL would not be).

# Every 15 minutes (seed 000) the cleanup frees lapsed leases, re-enqueues jobs whose task was lost, sends
# callbacks nobody sent and purges expired jobs.
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
    uri         = google_cloudfunctions2_function.cleanup.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      # What the cleanup checks (ONCETASK_CLEANUP_AUDIENCE): its deterministic run.app URL.
      audience = local.run_app_urls.cleanup
    }
  }

  depends_on = [google_cloud_run_service_iam_member.scheduler_invokes_cleanup]
}

# One job per schedule of the app (`app.schedule(...)` in its code, `schedules` in the manifest): at each time
# its cron names, POST /schedules/NAME on the cleanup function, which submits the schedule's job keyed by the
# X-CloudScheduler-ScheduleTime header Scheduler sends. A retried call of the same run carries the same time, so
# it finds the job it already made: retrying is safe, and a run is not lost to one failed call.
resource "google_cloud_scheduler_job" "schedules" {
  for_each = module.manifest.schedules

  project = var.project_id
  # The stack's prefix keeps two stacks' schedules of the same name apart in one project and region.
  name        = "${var.name_prefix}-schedule-${each.key}"
  description = "oncetask schedule ${each.key} of app ${module.manifest.app}: submits a ${each.value.job_type} job"
  region      = var.region
  schedule    = each.value.cron
  time_zone   = each.value.time_zone
  # Submitting a job is one Firestore transaction and one task.
  attempt_deadline = "60s"

  retry_config {
    retry_count          = 5
    min_backoff_duration = "10s"
    max_backoff_duration = "300s"
    max_doublings        = 4
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloudfunctions2_function.cleanup.service_config[0].uri}/schedules/${each.key}"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      # The audience is the function's URL, not the path's: what the cleanup checks.
      audience = local.run_app_urls.cleanup
    }
  }

  depends_on = [google_cloud_run_service_iam_member.scheduler_invokes_cleanup]
}
