# The three functions, all built from the one bundle (main.py, requirements.txt, oncetask/, the app's packages).

data "archive_file" "source" {
  type        = "zip"
  source_dir  = var.source_dir
  output_path = "${path.root}/.terraform/oncetask/${var.name_prefix}-source.zip"
  # Byte code and editor litter would change the hash (and redeploy) without changing the code. Glob patterns
  # need archive >= 2.5 (versions.tf). Zip entries carry no timestamps; a fixed mode makes the hash independent
  # of the checkout's umask.
  excludes         = ["**/__pycache__", "**/*.pyc", "**/.DS_Store"]
  output_file_mode = "0644"
}

# Named by content hash: a code change is a new object, which redeploys the functions; an unchanged bundle is not.
resource "google_storage_bucket_object" "source" {
  name   = "source-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

locals {
  # Every function reads the one Settings class; these are its fields' ONCETASK_* names. What depends on the app
  # (queues, their rates and backoff, schedules) is in its code and its manifest, not here: the functions get the
  # queue prefix the app named its queues with, and the callbacks queue, and derive the rest as the app did.
  module_env = {
    ONCETASK_PROJECT_ID                = var.project_id
    ONCETASK_LOCATION                  = var.region
    ONCETASK_QUEUE_PREFIX              = module.manifest.queue_prefix
    ONCETASK_CALLBACK_QUEUE            = google_cloud_tasks_queue.callbacks.name
    ONCETASK_DATABASE                  = local.database
    ONCETASK_BUCKET                    = google_storage_bucket.artifacts.name
    ONCETASK_TASKS_SERVICE_ACCOUNT     = google_service_account.tasks.email
    ONCETASK_SCHEDULER_SERVICE_ACCOUNT = google_service_account.scheduler.email
    ONCETASK_TASK_AUDIENCE             = local.run_app_urls.process_task
    ONCETASK_CLEANUP_AUDIENCE          = local.run_app_urls.cleanup
    ONCETASK_API_AUDIENCE              = var.api_audience != "" ? var.api_audience : local.run_app_urls.api
    ONCETASK_RETENTION_DAYS            = tostring(var.retention_days)
    ONCETASK_LEASE_TTL_SECONDS         = tostring(var.lease_ttl_seconds)
    ONCETASK_DISPATCH_DEADLINE_SECONDS = tostring(var.dispatch_deadline_seconds)
  }
  # Who may call the API (access.tf): anonymous submissions, Firebase sign-in, operators. ONCETASK_API_REQUIRE_AUTH
  # is never set: its default, true, is the only value a deployment may have (environment_variables refuses it).
  common_env = merge(var.environment_variables, local.api_access_env, local.module_env)

  # Every function creates tasks for the task handler (the API: new jobs, retries; the cleanup: lost tasks,
  # schedules; the handler itself: children, next stages, sleeps, wake-ups, follow-up jobs). The API and the
  # cleanup send them to the handler's run.app URI as the provider reports it; the handler cannot reference its
  # own attribute, so it uses its deterministic run.app URL (also the tasks' audience, which it checks).
  enqueuer_env = merge(local.common_env, {
    ONCETASK_TASK_HANDLER_URL = google_cloudfunctions2_function.process_task.service_config[0].uri
  })
  handler_env = merge(local.common_env, {
    ONCETASK_TASK_HANDLER_URL = local.run_app_urls.process_task
  })

  # URL callbacks are signed with this secret (Settings.callback_secret), which Cloud Run reads from Secret
  # Manager when an instance starts; it never appears in the configuration or the state. Without it the
  # functions refuse URL callbacks (422); follow-up job callbacks need no secret.
  callback_secret = var.callback_secret == null ? [] : [var.callback_secret]

  # One request per instance (the Python default), so every job queue's concurrent dispatches need their own
  # instance: the sum over the job queues, unless the deployer caps it lower for the project's quota.
  task_handler_max_instances = var.task_handler_max_instances != null ? var.task_handler_max_instances : module.manifest.job_concurrency

  source_object = google_storage_bucket_object.source.name
}

resource "google_cloudfunctions2_function" "process_task" {
  project  = var.project_id
  name     = local.function_names.process_task
  location = var.region
  labels   = local.labels

  build_config {
    runtime           = var.python_runtime
    entry_point       = "process_task"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = local.source_object
      }
    }
  }

  service_config {
    service_account_email = google_service_account.worker.email
    environment_variables = local.handler_env
    ingress_settings      = var.private_ingress
    available_memory      = var.function_memory
    # Not shorter than the dispatch deadline: Cloud Tasks gives up on an attempt no later than the platform
    # cuts it, so a "failed" attempt is never one that is still running unseen (the lease fences it anyway).
    timeout_seconds    = var.dispatch_deadline_seconds
    min_instance_count = 0
    # One request per instance (the Python default): a dispatch beyond the cap gets 429 and spends one of the
    # queue's deliveries. (Every job type's stage timeout fits in the deadline: ./manifest checks it.)
    max_instance_count             = local.task_handler_max_instances
    all_traffic_on_latest_revision = true

    dynamic "secret_environment_variables" {
      for_each = local.callback_secret
      content {
        key        = "ONCETASK_CALLBACK_SECRET"
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret_id
        version    = secret_environment_variables.value.version
      }
    }
  }

  lifecycle {
    postcondition {
      condition     = self.service_config[0].uri == local.run_app_urls.process_task || can(regex("^https://${local.function_names.process_task}-[a-z0-9]+-[a-z0-9]+\\.a\\.run\\.app$", self.service_config[0].uri))
      error_message = "The task handler reports ${self.service_config[0].uri}, not a run.app URL of service ${local.function_names.process_task}: Cloud Tasks must call a run.app URL to pass internal ingress."
    }
  }

  depends_on = [time_sleep.grants_propagate]
}

resource "google_cloudfunctions2_function" "api" {
  project  = var.project_id
  name     = local.function_names.api
  location = var.region
  labels   = local.labels

  build_config {
    runtime           = var.python_runtime
    entry_point       = "api"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = local.source_object
      }
    }
  }

  service_config {
    service_account_email = google_service_account.api.email
    environment_variables = local.enqueuer_env
    # Reachable from anywhere at the network level; who may call it is decided by invoker IAM (identities.tf)
    # and by the API's own token check, which no variable turns off (access.tf).
    ingress_settings               = "ALLOW_ALL"
    available_memory               = var.function_memory
    timeout_seconds                = 60
    min_instance_count             = 0
    max_instance_count             = var.api_max_instances
    all_traffic_on_latest_revision = true

    dynamic "secret_environment_variables" {
      for_each = local.callback_secret
      content {
        key        = "ONCETASK_CALLBACK_SECRET"
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret_id
        version    = secret_environment_variables.value.version
      }
    }
  }

  lifecycle {
    postcondition {
      condition     = self.service_config[0].uri == local.run_app_urls.api || can(regex("^https://${local.function_names.api}-[a-z0-9]+-[a-z0-9]+\\.a\\.run\\.app$", self.service_config[0].uri))
      error_message = "The API reports ${self.service_config[0].uri}, not a run.app URL of service ${local.function_names.api}."
    }
  }

  depends_on = [time_sleep.grants_propagate]
}

resource "google_cloudfunctions2_function" "cleanup" {
  project  = var.project_id
  name     = local.function_names.cleanup
  location = var.region
  labels   = local.labels

  build_config {
    runtime           = var.python_runtime
    entry_point       = "cleanup_stale_locks"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = local.source_object
      }
    }
  }

  service_config {
    service_account_email = google_service_account.cleanup.email
    environment_variables = local.enqueuer_env
    ingress_settings      = var.private_ingress
    available_memory      = var.function_memory
    timeout_seconds       = 540
    min_instance_count    = 0
    # Runs may overlap (a slow run and the next tick); the store's fenced writes make that safe, and more
    # than two at once would only contend.
    max_instance_count             = 2
    all_traffic_on_latest_revision = true

    dynamic "secret_environment_variables" {
      for_each = local.callback_secret
      content {
        key        = "ONCETASK_CALLBACK_SECRET"
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret_id
        version    = secret_environment_variables.value.version
      }
    }
  }

  lifecycle {
    postcondition {
      condition     = self.service_config[0].uri == local.run_app_urls.cleanup || can(regex("^https://${local.function_names.cleanup}-[a-z0-9]+-[a-z0-9]+\\.a\\.run\\.app$", self.service_config[0].uri))
      error_message = "The cleanup function reports ${self.service_config[0].uri}, not a run.app URL of service ${local.function_names.cleanup}: Cloud Scheduler must call a run.app URL to pass internal ingress."
    }
  }

  depends_on = [time_sleep.grants_propagate]
}
