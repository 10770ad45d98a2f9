# Inputs of monitoring.tf: where alerts go and when they fire. Defaults suit a stack of a few hundred jobs a
# minute; tune the thresholds to your traffic.

variable "monitoring_enabled" {
  description = "Create the log-based metrics, alert policies and dashboard of monitoring.tf."
  type        = bool
  default     = true
}

variable "alert_notification_channels" {
  description = "Existing Cloud Monitoring notification channels every alert notifies, as IDs (projects/PROJECT/notificationChannels/ID): e-mail, Slack, PagerDuty, Pub/Sub..."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for channel in var.alert_notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", channel))])
    error_message = "Each notification channel is an ID like projects/PROJECT/notificationChannels/ID."
  }
}

variable "alert_emails" {
  description = "E-mail addresses to notify: the module creates one e-mail notification channel for each, besides alert_notification_channels."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+$", email))])
    error_message = "Each entry of alert_emails is an e-mail address."
  }
}

variable "alert_queue_depth" {
  description = "Alert when a queue holds more tasks than this (waiting, in flight or waiting for a retry) for alert_for_seconds."
  type        = number
  default     = 1000

  validation {
    condition     = var.alert_queue_depth > 0
    error_message = "alert_queue_depth must be positive."
  }
}

variable "alert_oldest_task_age_seconds" {
  description = "Alert when a queue's most overdue task has waited longer than this past its scheduled time (measured by each cleanup run, so at the cleanup's interval)."
  type        = number
  default     = 900

  validation {
    condition     = var.alert_oldest_task_age_seconds > 0
    error_message = "alert_oldest_task_age_seconds must be positive."
  }
}

variable "alert_dead_letters" {
  description = "Alert when more jobs than this fail for good (each writes a dead letter) within alert_window_seconds. 0: any one."
  type        = number
  default     = 0

  validation {
    condition     = var.alert_dead_letters >= 0
    error_message = "alert_dead_letters must not be negative."
  }
}

variable "alert_stuck_jobs" {
  description = "Alert when more jobs than this are found stuck past their deadline (a lapsed lease, a lost task, a hung stage) within alert_window_seconds. 0: any one."
  type        = number
  default     = 0

  validation {
    condition     = var.alert_stuck_jobs >= 0
    error_message = "alert_stuck_jobs must not be negative."
  }
}

variable "alert_5xx_ratio" {
  description = "Alert when more than this fraction of a function's requests answer 5xx over alert_window_seconds (the task handler answers 503 while a backend is down, 500 for a bug)."
  type        = number
  default     = 0.05

  validation {
    condition     = var.alert_5xx_ratio > 0 && var.alert_5xx_ratio < 1
    error_message = "alert_5xx_ratio is a fraction between 0 and 1."
  }
}

variable "alert_window_seconds" {
  description = "The window alerts count events over, in seconds (a multiple of 60)."
  type        = number
  default     = 300

  validation {
    condition     = var.alert_window_seconds >= 60 && var.alert_window_seconds % 60 == 0
    error_message = "alert_window_seconds is a multiple of 60, at least 60."
  }
}

variable "alert_for_seconds" {
  description = "How long a level (queue depth, 5xx ratio) must stay past its threshold before the alert fires, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.alert_for_seconds >= 0 && var.alert_for_seconds % 60 == 0
    error_message = "alert_for_seconds is a multiple of 60."
  }
}
