output "api_url" {
  description = "The API's run.app URL (POST /jobs, GET /jobs/{id}, /openapi.json); callers' ID tokens carry api_audience."
  value       = google_cloudfunctions2_function.api.service_config[0].uri
}

output "api_audience" {
  description = "The audience the API requires in callers' ID tokens (e.g. `gcloud auth print-identity-token --audiences=...`)."
  value       = local.module_env.ONCETASK_API_AUDIENCE
}

output "task_handler_url" {
  description = "The task handler's run.app URL, which Cloud Tasks calls (internal ingress, invoker IAM)."
  value       = google_cloudfunctions2_function.process_task.service_config[0].uri
}

output "cleanup_url" {
  description = "The cleanup function's run.app URL, which Cloud Scheduler calls (internal ingress, invoker IAM)."
  value       = google_cloudfunctions2_function.cleanup.service_config[0].uri
}

output "function_names" {
  description = "The three functions' names (also their Cloud Run services' names)."
  value       = local.function_names
}

output "queue_ids" {
  description = "Every Cloud Tasks queue of the manifest (job queues and the callbacks queue), by name."
  value = merge(
    { for name, queue in google_cloud_tasks_queue.jobs : name => queue.id },
    { (google_cloud_tasks_queue.callbacks.name) = google_cloud_tasks_queue.callbacks.id },
  )
}

output "queue_prefix" {
  description = "The prefix of every queue name, as the app was bundled with it (ONCETASK_QUEUE_PREFIX)."
  value       = module.manifest.queue_prefix
}

output "callback_queue" {
  description = "The queue of the completion callbacks (pause it to hold callbacks back: gcloud tasks queues pause NAME)."
  value       = google_cloud_tasks_queue.callbacks.name
}

output "artifact_bucket" {
  description = "Bucket of the stages' artifacts."
  value       = google_storage_bucket.artifacts.name
}

output "firestore_database" {
  description = "The Firestore database of the jobs."
  value       = local.database
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

output "schedule_jobs" {
  description = "The scheduler job of each schedule of the app, by schedule name (run one now: gcloud scheduler jobs run NAME --location REGION)."
  value       = { for name, job in google_cloud_scheduler_job.schedules : name => job.name }
}

output "manifest" {
  description = "The bundle's manifest as deployed: app name, queues, lanes, job types and schedules."
  value       = module.manifest.manifest
}

output "api_access" {
  description = "Who may call the API, as deployed: whether allUsers may invoke it (public_invoker), whether callers without a token may submit, whose Firebase sign-ins it accepts (empty: none), the operators by list, and the release of the Firestore rules (null: released elsewhere)."
  value = {
    public_invoker          = local.api_public_invoker
    anonymous_submissions   = var.allow_anonymous_submissions
    firebase_project_id     = local.api_access_env.ONCETASK_FIREBASE_PROJECT_ID
    operators               = var.operators
    firestore_rules_release = var.deploy_firestore_rules ? local.firestore_rules_release : null
  }
}
