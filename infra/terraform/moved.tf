# The resources of the stack moved into the module (infra/modules/oncetask): a stack applied before the move keeps
# every resource (same names in the cloud) instead of destroying and recreating it. Remove these blocks once
# every deployment has applied them.

moved {
  from = google_service_account.api
  to   = module.oncetask.google_service_account.api
}

moved {
  from = google_service_account.worker
  to   = module.oncetask.google_service_account.worker
}

moved {
  from = google_service_account.cleanup
  to   = module.oncetask.google_service_account.cleanup
}

moved {
  from = google_service_account.tasks
  to   = module.oncetask.google_service_account.tasks
}

moved {
  from = google_service_account.scheduler
  to   = module.oncetask.google_service_account.scheduler
}

moved {
  from = google_service_account.build
  to   = module.oncetask.google_service_account.build
}

moved {
  from = google_project_iam_member.api_datastore
  to   = module.oncetask.google_project_iam_member.api_datastore
}

moved {
  from = google_project_iam_member.worker_datastore
  to   = module.oncetask.google_project_iam_member.worker_datastore
}

moved {
  from = google_project_iam_member.cleanup_datastore
  to   = module.oncetask.google_project_iam_member.cleanup_datastore
}

moved {
  from = google_project_iam_member.build_logs
  to   = module.oncetask.google_project_iam_member.build_logs
}

moved {
  from = google_service_account_iam_member.api_acts_as_tasks
  to   = module.oncetask.google_service_account_iam_member.api_acts_as_tasks
}

moved {
  from = google_service_account_iam_member.cleanup_acts_as_tasks
  to   = module.oncetask.google_service_account_iam_member.cleanup_acts_as_tasks
}

moved {
  from = google_storage_bucket_iam_member.api_artifacts
  to   = module.oncetask.google_storage_bucket_iam_member.api_artifacts
}

moved {
  from = google_storage_bucket_iam_member.worker_artifacts
  to   = module.oncetask.google_storage_bucket_iam_member.worker_artifacts
}

moved {
  from = google_storage_bucket_iam_member.cleanup_artifacts
  to   = module.oncetask.google_storage_bucket_iam_member.cleanup_artifacts
}

moved {
  from = google_storage_bucket_iam_member.build_reads_source
  to   = module.oncetask.google_storage_bucket_iam_member.build_reads_source
}

moved {
  from = google_cloud_run_service_iam_member.tasks_invokes_process_task
  to   = module.oncetask.google_cloud_run_service_iam_member.tasks_invokes_process_task
}

moved {
  from = google_cloud_run_service_iam_member.scheduler_invokes_cleanup
  to   = module.oncetask.google_cloud_run_service_iam_member.scheduler_invokes_cleanup
}

moved {
  from = google_artifact_registry_repository_iam_member.build_pushes_images
  to   = module.oncetask.google_artifact_registry_repository_iam_member.build_pushes_images
}

moved {
  from = google_storage_bucket.artifacts
  to   = module.oncetask.google_storage_bucket.artifacts
}

moved {
  from = google_storage_bucket.source
  to   = module.oncetask.google_storage_bucket.source
}

moved {
  from = google_artifact_registry_repository.functions
  to   = module.oncetask.google_artifact_registry_repository.functions
}

moved {
  from = google_firestore_field.jobs_expire_at
  to   = module.oncetask.google_firestore_field.jobs_expire_at
}

moved {
  from = google_firestore_field.results_expire_at
  to   = module.oncetask.google_firestore_field.results_expire_at
}

moved {
  from = google_firestore_field.failed_tasks_expire_at
  to   = module.oncetask.google_firestore_field.failed_tasks_expire_at
}

moved {
  from = google_cloudfunctions2_function.api
  to   = module.oncetask.google_cloudfunctions2_function.api
}

moved {
  from = google_cloudfunctions2_function.process_task
  to   = module.oncetask.google_cloudfunctions2_function.process_task
}

moved {
  from = google_cloudfunctions2_function.cleanup
  to   = module.oncetask.google_cloudfunctions2_function.cleanup
}

moved {
  from = google_cloud_scheduler_job.cleanup
  to   = module.oncetask.google_cloud_scheduler_job.cleanup
}

moved {
  from = google_project_service.apis
  to   = module.oncetask.google_project_service.apis
}

moved {
  from = google_firestore_index.composite
  to   = module.oncetask.google_firestore_index.composite
}

moved {
  from = google_firestore_database.main
  to   = module.oncetask.google_firestore_database.main[0]
}

# The one queue of those stacks, oncetask-jobs, is not a queue of manifest version 2 (lanes: oncetask-interactive,
# oncetask-batch, ...): the plan would destroy it after the move, with its tasks. infra/README.md ("Upgrading a
# stack from one queue") says how to let it drain instead.
moved {
  from = google_cloud_tasks_queue.jobs
  to   = module.oncetask.google_cloud_tasks_queue.jobs["oncetask-jobs"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.api_enqueuer
  to   = module.oncetask.google_cloud_tasks_queue_iam_member.api_enqueuer["oncetask-jobs"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.cleanup_enqueuer
  to   = module.oncetask.google_cloud_tasks_queue_iam_member.cleanup_enqueuer["oncetask-jobs"]
}

moved {
  from = google_cloud_tasks_queue_iam_member.cleanup_viewer
  to   = module.oncetask.google_cloud_tasks_queue_iam_member.cleanup_viewer["oncetask-jobs"]
}

# The public invoker of the API is gone by default (it exists only with allow_anonymous_submissions, firebase_auth
# or allow_public_api_invoker on the module): google_cloud_run_service_iam_member.api_public is destroyed by the
# first apply, on purpose.
