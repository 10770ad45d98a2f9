# The queues of the bundle's manifest, each with the retry and rate settings the app declares in code (its lanes,
# its job types' own rates, routing.py): every lane's queue (one per shard), every job type's own queues, and
# the callbacks queue. The functions get no copy of these settings: the code that decides "was that the last
# attempt?" reads the same declarations, and ONCETASK_QUEUE_PREFIX lets it name the same queues.
resource "google_cloud_tasks_queue" "jobs" {
  for_each = module.manifest.job_queues

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

  depends_on = [google_project_service.apis]
}

# The completion callbacks: HTTP tasks to the callers' own URLs (signed with ONCETASK_CALLBACK_SECRET), retried
# for a day, apart from the jobs so a slow receiver never holds up a job's dispatch.
resource "google_cloud_tasks_queue" "callbacks" {
  project  = var.project_id
  name     = module.manifest.callback_queue.name
  location = var.region

  rate_limits {
    max_dispatches_per_second = module.manifest.callback_queue.max_dispatches_per_second
    max_concurrent_dispatches = module.manifest.callback_queue.max_concurrent_dispatches
  }

  retry_config {
    max_attempts       = module.manifest.callback_queue.max_attempts
    min_backoff        = "${module.manifest.callback_queue.min_backoff_seconds}s"
    max_backoff        = "${module.manifest.callback_queue.max_backoff_seconds}s"
    max_doublings      = module.manifest.callback_queue.max_doublings
    max_retry_duration = "${module.manifest.callback_queue.max_retry_duration_seconds}s"
  }

  depends_on = [google_project_service.apis]
}

locals {
  # Every queue of the stack, for the grants that cover them all (reading their figures).
  all_queues = merge(google_cloud_tasks_queue.jobs, { callbacks = google_cloud_tasks_queue.callbacks })
}
