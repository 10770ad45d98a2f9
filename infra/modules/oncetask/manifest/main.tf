# The bundle's manifest (oncetask.json, App.manifest() version 2), read and checked. No provider and no resource:
# everything here is decided at plan time from the file alone, so a bad manifest stops the plan before anything
# is created, and tests/infra evaluates this module with `terraform plan` on real and broken manifests without
# credentials.
#
# The queue names are the code's (functions/oncetask/routing.py): `{prefix}-{lane}`, then `-{job type}` for a job
# type's own queues, then `-{shard}` when the lane has several; a name is slugged (lowercase, runs of anything
# but letters and digits become one "-"). The prefix is read back from the lanes' shared queues, and every job
# queue's name is recomputed from it: the runtime, given the same prefix (ONCETASK_QUEUE_PREFIX), routes jobs to
# exactly the queues created here.

variable "path" {
  description = "The bundle's oncetask.json."
  type        = string
}

variable "dispatch_deadline_seconds" {
  description = "How long Cloud Tasks waits for the task handler (the module's dispatch_deadline_seconds): every job type's stage timeout must fit in it."
  type        = number
}

locals {
  manifest   = jsondecode(file(var.path))
  version    = try(local.manifest.manifest_version, 0)
  version_ok = local.version == 2

  # Every field the module reads, each queue with the same attributes (the callbacks queue has no lane, job type
  # or shard). try() keeps an older manifest readable far enough for the version check to say what is wrong.
  queues = {
    for queue in try(local.manifest.queues, []) : queue.name => {
      name                       = queue.name
      purpose                    = try(queue.purpose, "jobs")
      lane                       = try(queue.lane, null)
      job_type                   = try(queue.job_type, null)
      shard                      = try(queue.shard, 0)
      max_attempts               = queue.max_attempts
      min_backoff_seconds        = queue.min_backoff_seconds
      max_backoff_seconds        = queue.max_backoff_seconds
      max_doublings              = queue.max_doublings
      max_retry_duration_seconds = queue.max_retry_duration_seconds
      max_dispatches_per_second  = queue.max_dispatches_per_second
      max_concurrent_dispatches  = queue.max_concurrent_dispatches
    }
  }
  job_queues      = { for name, queue in local.queues : name => queue if queue.purpose == "jobs" }
  callback_queues = [for queue in values(local.queues) : queue if queue.purpose == "callbacks"]
  callback_queue  = try(one(local.callback_queues), null)

  shards = { for lane in try(local.manifest.lanes, []) : lane.name => lane.shards }

  # The prefix, read back from one lane's shared queue (`{prefix}-{lane}[-{shard}]`); every job queue's name is
  # then recomputed from it below.
  shared_queue = try([for queue in values(local.job_queues) : queue if queue.job_type == null][0], null)
  shared_suffix = try(join("", [
    "-", trim(replace(lower(local.shared_queue.lane), "/[^a-z0-9]+/", "-"), "-"),
    local.shards[local.shared_queue.lane] > 1 ? "-${local.shared_queue.shard}" : "",
  ]), null)
  queue_prefix = try(endswith(local.shared_queue.name, local.shared_suffix) ? trimsuffix(local.shared_queue.name, local.shared_suffix) : "", "")

  # routing.queue_name(prefix, lane, job_type, shard, shards) for every job queue.
  expected_names = {
    for name, queue in local.job_queues : name => join("-", compact([
      local.queue_prefix,
      queue.lane == null ? "" : trim(replace(lower(queue.lane), "/[^a-z0-9]+/", "-"), "-"),
      queue.job_type == null ? "" : coalesce(trim(replace(lower(queue.job_type), "/[^a-z0-9]+/", "-"), "-"), "job"),
      try(local.shards[queue.lane], 0) > 1 ? tostring(queue.shard) : "",
    ]))
  }
  misnamed_queues = [for name, expected in local.expected_names : "${name} (expected ${expected})" if name != expected]
  unknown_lanes   = [for name, queue in local.job_queues : name if !contains(keys(local.shards), coalesce(queue.lane, "-"))]
  bad_queue_ids   = [for name in keys(local.queues) : name if !can(regex("^[A-Za-z0-9-]{1,100}$", name))]
  # Cloud Tasks' limits for a queue of HTTP tasks (routing.py checks the same when the app is defined).
  bad_rates = [
    for name, queue in local.queues : name
    if !(queue.max_dispatches_per_second > 0 && queue.max_dispatches_per_second <= 500 &&
    queue.max_concurrent_dispatches >= 1 && queue.max_concurrent_dispatches <= 5000)
  ]

  job_types = {
    for job_type in try(local.manifest.job_types, []) : job_type.name => {
      name                  = job_type.name
      stages                = job_type.stages
      stage_timeout_seconds = try(job_type.stage_timeout_seconds, null) # null: the deployment's setting
      max_attempts          = try(job_type.max_attempts, null)          # null: the deployment's setting
      lane                  = try(job_type.lane, null)
      queues                = try(job_type.queues, [])
    }
  }
  job_types_without_queues = [
    for name, job_type in local.job_types : name
    if length(job_type.queues) == 0 || !alltrue([for queue in job_type.queues : contains(keys(local.job_queues), queue)])
  ]
  slow_job_types = [
    for name, job_type in local.job_types : "${name} (${job_type.stage_timeout_seconds} s)"
    if coalesce(job_type.stage_timeout_seconds, 0) > var.dispatch_deadline_seconds
  ]

  schedules = {
    for schedule in try(local.manifest.schedules, []) : schedule.name => {
      name      = schedule.name
      cron      = schedule.cron
      time_zone = schedule.time_zone
      job_type  = schedule.job_type
      lane      = try(schedule.lane, null)
    }
  }
  bad_schedules = [
    for name, schedule in local.schedules : name
    if !contains(keys(local.job_types), schedule.job_type) || (schedule.lane != null && !contains(keys(local.shards), coalesce(schedule.lane, "-")))
  ]

  # The task handler serves one request per instance: every job queue may have this many tasks in flight at once.
  job_concurrency = sum(concat([0], [for queue in values(local.job_queues) : queue.max_concurrent_dispatches]))
}

output "app" {
  description = "The app's name."
  value       = try(local.manifest.app, "")
}

output "job_queues" {
  description = "Every job queue (every lane's, shard's and job type's own), by name, with its retry and rate settings."
  value       = local.job_queues

  precondition {
    condition     = local.version_ok
    error_message = "${var.path} is a version ${local.version} manifest; this module reads version 2 (lanes, several queues, schedules): rebuild the bundle with the oncetask this module comes with (`oncetask bundle`)."
  }
  precondition {
    condition     = !local.version_ok || length(local.job_queues) > 0
    error_message = "${var.path} names no job queue."
  }
  precondition {
    condition     = !local.version_ok || length(local.bad_queue_ids) == 0
    error_message = "Not valid Cloud Tasks queue IDs (letters, digits, '-', at most 100): ${join(", ", local.bad_queue_ids)}."
  }
  precondition {
    condition     = !local.version_ok || length(local.unknown_lanes) == 0
    error_message = "Job queues of a lane the manifest does not list: ${join(", ", local.unknown_lanes)}."
  }
  precondition {
    condition     = !local.version_ok || local.queue_prefix == "" || length(local.misnamed_queues) == 0
    error_message = "Job queues not named {prefix}-{lane}[-{job type}][-{shard}] with the prefix ${local.queue_prefix} (the runtime would route to other queues): ${join(", ", local.misnamed_queues)}."
  }
  precondition {
    # One queue dispatches at most 500 tasks per second (infra/README.md, "Past 500 dispatches per second").
    condition     = !local.version_ok || length(local.bad_rates) == 0
    error_message = "Queues whose max_dispatches_per_second is not in (0, 500] or max_concurrent_dispatches not in [1, 5000]: ${join(", ", local.bad_rates)}."
  }
}

output "queue_prefix" {
  description = "The prefix of every queue name (the app's ONCETASK_QUEUE_PREFIX when it was bundled); the functions get it back."
  value       = local.queue_prefix

  precondition {
    condition     = !local.version_ok || can(regex("^[A-Za-z][A-Za-z0-9-]{0,39}$", local.queue_prefix))
    error_message = "Cannot read the queue prefix back from the lanes' shared queues of ${var.path} (got \"${local.queue_prefix}\"): a shared queue is named {prefix}-{lane}[-{shard}], the prefix 1-40 letters, digits or '-'."
  }
}

output "callback_queue" {
  description = "The queue of the completion callbacks (HTTP tasks to the callers' URLs), with its retry and rate settings."
  value       = local.callback_queue

  precondition {
    condition     = !local.version_ok || length(local.callback_queues) == 1
    error_message = "${var.path} must name exactly one queue with purpose \"callbacks\"; it names ${length(local.callback_queues)}."
  }
  precondition {
    # Two stacks in one project differ by their prefix; a callbacks queue outside it would be shared by both.
    condition     = !local.version_ok || local.callback_queue == null || startswith(try(local.callback_queue.name, ""), "${local.queue_prefix}-")
    error_message = "The callbacks queue ${try(local.callback_queue.name, "")} does not start with the queue prefix \"${local.queue_prefix}-\": bundle with ONCETASK_CALLBACK_QUEUE=${local.queue_prefix}-callbacks (next to ONCETASK_QUEUE_PREFIX=${local.queue_prefix})."
  }
}

output "job_types" {
  description = "The job types, by name: stages, stage timeout, attempts, lane and the queues their jobs may go to."
  value       = local.job_types

  precondition {
    condition     = !local.version_ok || length(local.job_types_without_queues) == 0
    error_message = "Job types whose queues the manifest does not define: ${join(", ", local.job_types_without_queues)}."
  }
  precondition {
    # A stage that may run longer than the delivery would be cut by Cloud Tasks, not by its own timeout.
    condition     = length(local.slow_job_types) == 0
    error_message = "Job types whose stage_timeout_seconds in ${var.path} exceeds dispatch_deadline_seconds (${var.dispatch_deadline_seconds}): ${join(", ", local.slow_job_types)}. Lower the job type's stage_timeout or raise the deadline."
  }
}

output "schedules" {
  description = "The app's schedules, by name: cron, time zone, job type and lane."
  value       = local.schedules

  precondition {
    condition     = !local.version_ok || length(local.bad_schedules) == 0
    error_message = "Schedules naming a job type or lane the manifest does not define: ${join(", ", local.bad_schedules)}."
  }
}

output "job_concurrency" {
  description = "The sum of the job queues' max_concurrent_dispatches: the task handler instances that serve every dispatch at once."
  value       = local.job_concurrency
}

output "manifest" {
  description = "The manifest as the bundle holds it."
  value       = local.manifest
}
