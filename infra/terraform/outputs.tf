output "api_url" {
  description = "The API (POST /jobs, GET /jobs/{id}, /openapi.json)."
  value       = module.oncetask.api_url
}

output "api_audience" {
  description = "The audience of callers' ID tokens."
  value       = module.oncetask.api_audience
}

output "task_handler_url" {
  description = "The task handler Cloud Tasks calls (not publicly invocable)."
  value       = module.oncetask.task_handler_url
}

output "scheduler_job" {
  description = "The cleanup's scheduler job."
  value       = module.oncetask.scheduler_job
}

output "queue_ids" {
  description = "The Cloud Tasks queues: every job queue and the callbacks queue."
  value       = module.oncetask.queue_ids
}

output "schedule_jobs" {
  description = "The scheduler job of each schedule of the app."
  value       = module.oncetask.schedule_jobs
}

output "service_accounts" {
  description = "Each identity's email."
  value       = module.oncetask.service_accounts
}

output "api_access" {
  description = "Who may call the API, as deployed (public invoker, anonymous submissions, Firebase project, operators, rules release)."
  value       = module.oncetask.api_access
}
