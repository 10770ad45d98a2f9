# Inputs of the root module. The queue's retry/rate defaults and retention_days must equal the defaults of
# functions/oncetask/settings.py (the single source of truth); tests/infra checks that they do.

variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the queue, the scheduler job and the buckets."
  type        = string
  default     = "us-central1"
}

variable "firestore_location" {
  description = "Firestore database location (a region such as us-central1, or a multi-region such as nam5). Empty: var.region."
  type        = string
  default     = ""
}

variable "name_prefix" {
  description = "Prefix of every service account, function and scheduler job name."
  type        = string
  default     = "oncetask"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}$", var.name_prefix))
    error_message = "name_prefix must be 2-15 characters of lowercase letters, digits and '-', starting with a letter (service account IDs are at most 30 characters)."
  }
}

variable "queue_name" {
  description = "The Cloud Tasks queue (settings.queue)."
  type        = string
  default     = "oncetask-jobs"
}

variable "artifact_bucket_name" {
  description = "Bucket of the stages' artifacts (settings.bucket). Empty: <project_id>-oncetask-artifacts."
  type        = string
  default     = ""
}

variable "retention_days" {
  description = "Finished jobs, their results and artifacts are purged after this many days (settings.retention_days)."
  type        = number
  default     = 30
}

# The queue (seeds 000 and 003). Defaults equal settings.py's.

variable "max_attempts" {
  description = "Attempts per task including the first (settings.max_attempts)."
  type        = number
  default     = 3
}

variable "min_backoff_seconds" {
  description = "First retry delay (settings.min_backoff_seconds)."
  type        = number
  default     = 30
}

variable "max_backoff_seconds" {
  description = "Longest retry delay (settings.max_backoff_seconds)."
  type        = number
  default     = 600
}

variable "max_doublings" {
  description = "Times the retry delay doubles before growing linearly (settings.max_doublings)."
  type        = number
  default     = 3
}

variable "max_retry_duration_seconds" {
  description = "Retries stop after this long since the first attempt, once max_attempts is also spent (settings.max_retry_duration_seconds)."
  type        = number
  default     = 3600
}

variable "max_dispatches_per_second" {
  description = "Queue dispatch rate (settings.max_dispatches_per_second). One queue dispatches at most 500/s."
  type        = number
  default     = 50

  validation {
    condition     = var.max_dispatches_per_second > 0 && var.max_dispatches_per_second <= 500
    error_message = "max_dispatches_per_second must be in (0, 500]: past 500/s shard across queues (infra/README.md)."
  }
}

variable "max_concurrent_dispatches" {
  description = "Tasks in flight at once (settings.max_concurrent_dispatches); also the task handler's instance cap."
  type        = number
  default     = 50
}

variable "dispatch_deadline_seconds" {
  description = "How long Cloud Tasks waits for the handler's answer (settings.dispatch_deadline_seconds); the handler's timeout."
  type        = number
  default     = 600

  validation {
    condition     = var.dispatch_deadline_seconds >= 15 && var.dispatch_deadline_seconds <= 1800
    error_message = "dispatch_deadline_seconds must be between 15 and 1800 (Cloud Tasks' allowed range)."
  }
}

# The functions.

variable "python_runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python312"

  validation {
    condition     = contains(["python311", "python312"], var.python_runtime)
    error_message = "python_runtime must be python311 or python312."
  }
}

variable "api_require_auth" {
  description = "Whether the public API requires a Google ID token (then jobs carry the caller's subject as owner)."
  type        = bool
  default     = false
}

variable "api_audience" {
  description = "Audience the API expects in callers' ID tokens when api_require_auth is true (settings.api_audience)."
  type        = string
  default     = ""
}

variable "api_max_instances" {
  description = "Instance cap of the public API."
  type        = number
  default     = 20
}

variable "private_ingress" {
  description = "Ingress of the task handler and the cleanup function. ALLOW_INTERNAL_ONLY admits Cloud Tasks and Cloud Scheduler of the same project; invoker IAM guards them either way."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.private_ingress)
    error_message = "private_ingress must be ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}

variable "cleanup_schedule" {
  description = "Cron schedule of the stale-lease cleanup (seed 000: every 15 minutes), in UTC."
  type        = string
  default     = "*/15 * * * *"
}

variable "function_memory" {
  description = "Memory of each function instance."
  type        = string
  default     = "512Mi"
}
