# The three functions, all built from functions/ (main.py, the oncetask package, requirements.txt).

data "archive_file" "functions" {
  type        = "zip"
  source_dir  = "${local.repo_root}/functions"
  output_path = "${path.root}/.terraform/functions.zip"
  excludes    = ["**/__pycache__/**", "**/*.pyc"]
}

# Named by content hash: a code change is a new object, which redeploys the functions; an unchanged tree is not.
resource "google_storage_bucket_object" "functions" {
  name   = "functions-${data.archive_file.functions.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.functions.output_path
}

locals {
  # Every function reads the one Settings class; these are its fields' ONCETASK_* names.
  function_env = {
    ONCETASK_PROJECT_ID                 = var.project_id
    ONCETASK_LOCATION                   = var.region
    ONCETASK_QUEUE                      = google_cloud_tasks_queue.jobs.name
    ONCETASK_DATABASE                   = google_firestore_database.main.name
    ONCETASK_BUCKET                     = google_storage_bucket.artifacts.name
    ONCETASK_TASK_HANDLER_URL           = local.function_urls.process_task
    ONCETASK_TASKS_SERVICE_ACCOUNT      = google_service_account.tasks.email
    ONCETASK_SCHEDULER_SERVICE_ACCOUNT  = google_service_account.scheduler.email
    ONCETASK_CLEANUP_AUDIENCE           = local.function_urls.cleanup
    ONCETASK_API_REQUIRE_AUTH           = tostring(var.api_require_auth)
    ONCETASK_API_AUDIENCE               = var.api_audience
    ONCETASK_RETENTION_DAYS             = tostring(var.retention_days)
    ONCETASK_MAX_ATTEMPTS               = tostring(var.max_attempts)
    ONCETASK_MIN_BACKOFF_SECONDS        = tostring(var.min_backoff_seconds)
    ONCETASK_MAX_BACKOFF_SECONDS        = tostring(var.max_backoff_seconds)
    ONCETASK_MAX_DOUBLINGS              = tostring(var.max_doublings)
    ONCETASK_MAX_RETRY_DURATION_SECONDS = tostring(var.max_retry_duration_seconds)
    ONCETASK_MAX_DISPATCHES_PER_SECOND  = tostring(var.max_dispatches_per_second)
    ONCETASK_MAX_CONCURRENT_DISPATCHES  = tostring(var.max_concurrent_dispatches)
    ONCETASK_DISPATCH_DEADLINE_SECONDS  = tostring(var.dispatch_deadline_seconds)
  }
}

resource "google_cloudfunctions2_function" "api" {
  name     = local.function_names.api
  location = var.region

  build_config {
    runtime           = var.python_runtime
    entry_point       = "api"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.api.email
    environment_variables          = local.function_env
    ingress_settings               = "ALLOW_ALL"
    available_memory               = var.function_memory
    timeout_seconds                = 60
    min_instance_count             = 0
    max_instance_count             = var.api_max_instances
    all_traffic_on_latest_revision = true
  }

  lifecycle {
    postcondition {
      condition     = self.url == local.function_urls.api
      error_message = "The function's URL is ${self.url}, not the derived ${local.function_urls.api}: fix local.function_urls."
    }
  }

  depends_on = [google_project_iam_member.build_logs, google_storage_bucket_iam_member.build_reads_source,
  google_artifact_registry_repository_iam_member.build_pushes_images]
}

resource "google_cloudfunctions2_function" "process_task" {
  name     = local.function_names.process_task
  location = var.region

  build_config {
    runtime           = var.python_runtime
    entry_point       = "process_task"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.worker.email
    environment_variables = local.function_env
    ingress_settings      = var.private_ingress
    available_memory      = var.function_memory
    # Not shorter than the dispatch deadline: Cloud Tasks gives up on an attempt no later than the platform
    # cuts it, so a "failed" attempt is never one that is still running unseen (the lease fences it anyway).
    timeout_seconds    = var.dispatch_deadline_seconds
    min_instance_count = 0
    # One request per instance (the Python default), so the queue's concurrency is the instance cap: a
    # dispatch beyond the cap would get 429 and spend one of the task's few attempts.
    max_instance_count             = var.max_concurrent_dispatches
    all_traffic_on_latest_revision = true
  }

  lifecycle {
    postcondition {
      condition     = self.url == local.function_urls.process_task
      error_message = "The function's URL is ${self.url}, not the derived ${local.function_urls.process_task}: fix local.function_urls."
    }
  }

  depends_on = [google_project_iam_member.build_logs, google_storage_bucket_iam_member.build_reads_source,
  google_artifact_registry_repository_iam_member.build_pushes_images]
}

resource "google_cloudfunctions2_function" "cleanup" {
  name     = local.function_names.cleanup
  location = var.region

  build_config {
    runtime           = var.python_runtime
    entry_point       = "cleanup_stale_locks"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.functions.name
      }
    }
  }

  service_config {
    service_account_email = google_service_account.cleanup.email
    environment_variables = local.function_env
    ingress_settings      = var.private_ingress
    available_memory      = var.function_memory
    timeout_seconds       = 540
    min_instance_count    = 0
    # Runs may overlap (a slow run and the next tick); the store's fenced writes make that safe, and more
    # than two at once would only contend.
    max_instance_count             = 2
    all_traffic_on_latest_revision = true
  }

  lifecycle {
    postcondition {
      condition     = self.url == local.function_urls.cleanup
      error_message = "The function's URL is ${self.url}, not the derived ${local.function_urls.cleanup}: fix local.function_urls."
    }
  }

  depends_on = [google_project_iam_member.build_logs, google_storage_bucket_iam_member.build_reads_source,
  google_artifact_registry_repository_iam_member.build_pushes_images]
}
