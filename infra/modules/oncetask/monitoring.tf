# Monitoring as code: log-based metrics on the functions' structured logs, alert policies, notification channels
# and a dashboard. Inputs in monitoring_variables.tf; the dashboard's layout in monitoring_dashboard.json.tftpl.
#
# The functions log one JSON object per line; lines that report something countable carry an `event` field
# (oncetask/logs.py, class Event): the metrics below count those events, so renaming one there means renaming
# it here (tests/infra/test_monitoring.py checks that every event named here exists in the code).
#
#   what                             from                                              alert
#   queue depth                      cloudtasks.googleapis.com/queue/depth (built in)  > alert_queue_depth
#   oldest task age                  the cleanup's `queue.stats` lines (each run)      > alert_oldest_task_age_seconds
#   dead letters                     `job.failed` (its dead letter is written with it) > alert_dead_letters
#   jobs stuck past their deadline   `lease.lapsed`, `task.lost`, `stage.timed_out`    > alert_stuck_jobs
#   bugs                             `stage.failed` with code BUG                      any
#   5xx ratio of each function       run.googleapis.com/request_count (built in)       > alert_5xx_ratio
#   completions, durations           `job.completed` (duration_seconds)                (dashboard)

locals {
  monitoring = var.monitoring_enabled

  # The three functions' logs (2nd gen functions are Cloud Run services of the same names).
  log_scope = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(${join(" OR ", [for name in values(local.function_names) : "\"${name}\""])})"

  # Counting metrics: which events each counts. Every one carries the job type, the error code and the event.
  event_metrics = {
    job_completions = {
      events      = ["job.completed"]
      description = "Jobs completed."
    }
    dead_letters = {
      events      = ["job.failed"]
      description = "Jobs failed for good: each wrote a dead letter (failed_tasks) in the same commit."
    }
    stage_failures = {
      events      = ["stage.failed"]
      description = "Recorded failures of an attempt, retried or final; code BUG marks a programming error."
    }
    stuck_jobs = {
      events      = ["lease.lapsed", "task.lost", "stage.timed_out"]
      description = "Jobs found stuck past their deadline: a worker that stopped renewing its lease, a job whose task vanished, a stage that hung."
    }
  }

  metric_prefix = "logging.googleapis.com/user/${var.name_prefix}"
  alert_channels = concat(
    var.alert_notification_channels,
    [for channel in google_monitoring_notification_channel.email : channel.id],
  )
  job_queue_ids = join(", ", [for name in keys(module.manifest.job_queues) : "\"${name}\""])
}

resource "google_project_service" "monitoring" {
  for_each = var.enable_apis && local.monitoring ? toset(["monitoring.googleapis.com"]) : toset([])

  project            = var.project_id
  service            = each.key
  disable_on_destroy = false
}

# Log-based metrics -------------------------------------------------------------------------------------------

resource "google_logging_metric" "events" {
  for_each = local.monitoring ? local.event_metrics : {}

  project     = var.project_id
  name        = "${var.name_prefix}/${each.key}"
  description = each.value.description
  filter      = "${local.log_scope} AND jsonPayload.event=(${join(" OR ", [for event in each.value.events : "\"${event}\""])})"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    labels {
      key         = "job_type"
      value_type  = "STRING"
      description = "The job's type."
    }
    labels {
      key         = "code"
      value_type  = "STRING"
      description = "The error code, for failures (BUG: a programming error)."
    }
    labels {
      key         = "event"
      value_type  = "STRING"
      description = "The event counted."
    }
  }

  label_extractors = {
    job_type = "EXTRACT(jsonPayload.job_type)"
    code     = "EXTRACT(jsonPayload.code)"
    event    = "EXTRACT(jsonPayload.event)"
  }
}

resource "google_logging_metric" "job_duration" {
  count = local.monitoring ? 1 : 0

  project     = var.project_id
  name        = "${var.name_prefix}/job_duration"
  description = "Seconds from a job's first start to its completion."
  filter      = "${local.log_scope} AND jsonPayload.event=\"job.completed\" AND jsonPayload.duration_seconds>=0"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "s"

    labels {
      key         = "job_type"
      value_type  = "STRING"
      description = "The job's type."
    }
  }

  value_extractor  = "EXTRACT(jsonPayload.duration_seconds)"
  label_extractors = { job_type = "EXTRACT(jsonPayload.job_type)" }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 48
      growth_factor      = 1.5
      scale              = 0.01
    }
  }
}

resource "google_logging_metric" "queue_oldest_task_age" {
  count = local.monitoring ? 1 : 0

  project     = var.project_id
  name        = "${var.name_prefix}/queue_oldest_task_age"
  description = "How long each queue's most overdue task has waited past its scheduled time, read by every cleanup run (Cloud Tasks exports the depth, not this)."
  filter      = "${local.log_scope} AND jsonPayload.event=\"queue.stats\""

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "s"

    labels {
      key         = "queue"
      value_type  = "STRING"
      description = "The Cloud Tasks queue ID."
    }
  }

  value_extractor  = "EXTRACT(jsonPayload.oldest_task_age_seconds)"
  label_extractors = { queue = "EXTRACT(jsonPayload.queue)" }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.5
      scale              = 1
    }
  }
}

# Notification channels -----------------------------------------------------------------------------------------

resource "google_monitoring_notification_channel" "email" {
  for_each = local.monitoring ? toset(var.alert_emails) : toset([])

  project      = var.project_id
  display_name = "${var.name_prefix} alerts: ${each.value}"
  type         = "email"
  labels       = { email_address = each.value }
  user_labels  = local.labels

  depends_on = [google_project_service.monitoring]
}

# Alert policies ------------------------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "queue_depth" {
  count = local.monitoring ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name_prefix}: a queue is backing up"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "More than ${var.alert_queue_depth} tasks in a queue"
    condition_threshold {
      filter          = "resource.type=\"cloud_tasks_queue\" AND metric.type=\"cloudtasks.googleapis.com/queue/depth\" AND resource.labels.queue_id=one_of(${local.job_queue_ids})"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_queue_depth
      duration        = "${var.alert_for_seconds}s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.queue_id"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Tasks arrive faster than the queue dispatches them, or the task handler is failing (see the 5xx alert) or paused. `oncetask stats` (or GET /stats) shows each queue's depth, oldest task and dispatch rate; the queue's rate limits come from the app's lanes."
  }

  alert_strategy {
    auto_close = "1800s"
  }
}

resource "google_monitoring_alert_policy" "oldest_task_age" {
  count = local.monitoring ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name_prefix}: a queue's oldest task is overdue"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "A task waited more than ${var.alert_oldest_task_age_seconds} s past its time"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"${local.metric_prefix}/queue_oldest_task_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_oldest_task_age_seconds
      duration        = "0s"

      aggregations {
        # The cleanup reads each queue once per run (every 15 minutes by default): a window that holds one.
        alignment_period     = "1800s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["metric.label.queue"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A queue holds a task that should have run long ago: the queue is paused or throttled, or its handler keeps failing. Check the queue's state and the task handler's 5xx rate; `oncetask stats` shows the age per queue."
  }

  alert_strategy {
    auto_close = "3600s"
  }

  depends_on = [google_logging_metric.queue_oldest_task_age]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  count = local.monitoring ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name_prefix}: jobs failed for good"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "More than ${var.alert_dead_letters} dead letters in ${var.alert_window_seconds} s"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"${local.metric_prefix}/dead_letters\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_dead_letters
      duration        = "0s"

      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.job_type"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Jobs ended `failed` after their last attempt or a permanent error; each has a dead letter in `failed_tasks` with its error history (type and traceback). `oncetask list --state failed`, `oncetask status JOB_ID`, then `oncetask retry JOB_ID` once the cause is fixed."
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [google_logging_metric.events]
}

resource "google_monitoring_alert_policy" "stuck_jobs" {
  count = local.monitoring ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name_prefix}: jobs stuck past their deadline"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "More than ${var.alert_stuck_jobs} stuck jobs found in ${var.alert_window_seconds} s"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"${local.metric_prefix}/stuck_jobs\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_stuck_jobs
      duration        = "0s"

      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.event"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A worker stopped renewing a job's lease (it died, hung or lost the network), a job's task vanished, or a stage ran past its deadline. The cleanup re-enqueues such jobs; many of them at once point at crashing instances (memory, deadlines) or a stage that hangs. `oncetask stats` shows the lapsed leases now."
  }

  alert_strategy {
    auto_close = "1800s"
  }

  depends_on = [google_logging_metric.events]
}

resource "google_monitoring_alert_policy" "bugs" {
  count = local.monitoring ? 1 : 0

  project               = var.project_id
  display_name          = "${var.name_prefix}: a stage raised a programming error"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "A stage failed with code BUG"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"${local.metric_prefix}/stage_failures\" AND metric.labels.code=\"BUG\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.job_type"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A KeyError, TypeError, AttributeError... in a stage: a bug, not bad input, so the job failed at once. Error Reporting groups these by their stack trace; fix the code, deploy, then `oncetask retry` the failed jobs."
  }

  alert_strategy {
    auto_close = "3600s"
  }

  depends_on = [google_logging_metric.events]
}

resource "google_monitoring_alert_policy" "function_5xx" {
  for_each = local.monitoring ? local.function_names : {}

  project               = var.project_id
  display_name          = "${var.name_prefix}: ${each.key} answers 5xx"
  combiner              = "OR"
  notification_channels = local.alert_channels
  user_labels           = local.labels

  conditions {
    display_name = "More than ${var.alert_5xx_ratio * 100}% of ${each.value}'s requests answer 5xx"
    condition_threshold {
      filter             = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${each.value}\" AND metric.type=\"run.googleapis.com/request_count\" AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${each.value}\" AND metric.type=\"run.googleapis.com/request_count\""
      comparison         = "COMPARISON_GT"
      threshold_value    = var.alert_5xx_ratio
      duration           = "${var.alert_for_seconds}s"

      aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      denominator_aggregations {
        alignment_period     = "${var.alert_window_seconds}s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The function answers 500 (a bug: Error Reporting has its stack) or 503 (Firestore, Cloud Tasks or Storage unavailable: Cloud Tasks slows the queue down and retries). Its logs: resource.labels.service_name=\"${each.value}\" severity>=WARNING."
  }

  alert_strategy {
    auto_close = "1800s"
  }
}

# The dashboard ---------------------------------------------------------------------------------------------------

resource "google_monitoring_dashboard" "oncetask" {
  count = local.monitoring ? 1 : 0

  project = var.project_id
  # Each value goes inside a JSON string of the template: JSON-escaped, without its own quotes.
  dashboard_json = templatefile("${path.module}/monitoring_dashboard.json.tftpl", {
    for key, value in {
      title          = "oncetask: ${var.name_prefix}"
      metric_prefix  = local.metric_prefix
      queue_filter   = "resource.labels.queue_id=one_of(${local.job_queue_ids})"
      service_filter = "resource.labels.service_name=one_of(${join(", ", [for name in values(local.function_names) : "\"${name}\""])})"
    } : key => trimsuffix(trimprefix(jsonencode(value), "\""), "\"")
  })

  depends_on = [
    google_logging_metric.events,
    google_logging_metric.job_duration,
    google_logging_metric.queue_oldest_task_age,
  ]
}
