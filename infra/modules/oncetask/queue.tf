# The queue(s) of the bundle's manifest, with the retry and rate settings the app was built with. The same
# values reach the functions as ONCETASK_* variables (functions.tf), so the handler's "was that the last
# attempt?" and the queue's retry policy are one decision.
resource "google_cloud_tasks_queue" "jobs" {
  for_each = local.queues

  project  = var.project_id
  name     = each.value.name
  location = var.region

  rate_limits {
    max_dispatches_per_second = each.value.max_dispatches_per_second
    max_concurrent_dispatches = each.value.max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = each.value.max_attempts
    min_backoff        = "${each.value.min_backoff_seconds}s"
    max_backoff        = "${each.value.max_backoff_seconds}s"
    max_doublings      = each.value.max_doublings
    max_retry_duration = "${each.value.max_retry_duration_seconds}s"
  }

  lifecycle {
    precondition {
      condition     = try(local.manifest.manifest_version, 0) == 1
      error_message = "${var.source_dir}/oncetask.json is not a version 1 manifest: rebuild the bundle with an oncetask this module supports."
    }
    precondition {
      condition     = length(local.manifest.queues) == 1
      error_message = "The manifest names ${length(local.manifest.queues)} queues; this runtime reads one (ONCETASK_QUEUE)."
    }
    precondition {
      condition     = alltrue([for job_type in local.manifest.job_types : contains(keys(local.queues), job_type.queue)])
      error_message = "A job type of the manifest names a queue the manifest does not define."
    }
    precondition {
      # One queue dispatches at most 500 tasks per second (infra/README.md, "Past 500 dispatches per second").
      condition     = each.value.max_dispatches_per_second > 0 && each.value.max_dispatches_per_second <= 500
      error_message = "Queue ${each.key}: max_dispatches_per_second must be in (0, 500]."
    }
  }

  depends_on = [google_project_service.apis]
}
