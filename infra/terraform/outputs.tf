output "api_url" {
  description = "The public API (POST /jobs, GET /jobs/{id}, /openapi.json)."
  value       = google_cloudfunctions2_function.api.url
}

output "task_handler_url" {
  description = "The task handler Cloud Tasks calls (not publicly invocable)."
  value       = google_cloudfunctions2_function.process_task.url
}

output "cleanup_url" {
  description = "The cleanup function Cloud Scheduler calls (not publicly invocable)."
  value       = google_cloudfunctions2_function.cleanup.url
}

output "queue_path" {
  description = "The Cloud Tasks queue."
  value       = google_cloud_tasks_queue.jobs.id
}

output "artifact_bucket" {
  description = "Bucket of the stages' artifacts."
  value       = google_storage_bucket.artifacts.name
}

output "service_accounts" {
  description = "Each identity's email."
  value = {
    api       = google_service_account.api.email
    worker    = google_service_account.worker.email
    cleanup   = google_service_account.cleanup.email
    tasks     = google_service_account.tasks.email
    scheduler = google_service_account.scheduler.email
    build     = google_service_account.build.email
  }
}

output "scheduler_job" {
  description = "The cleanup's scheduler job (run it now: gcloud scheduler jobs run NAME --location REGION)."
  value       = google_cloud_scheduler_job.cleanup.name
}
