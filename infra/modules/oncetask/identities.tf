# One identity per role in the system, each granted only what its code calls:
#
#   api        runs the API: Firestore; creates tasks on the job queues (new jobs, retries) and mints their OIDC
#              tokens as `tasks`; deletes the task of a scheduled job it cancels; sends the callback of a job it
#              cancels (callbacks queue); lists and deletes the partial objects of a job cancelled while it waits
#   worker     runs the task handler: Firestore; objects of the artifact bucket; creates tasks on the job queues
#              (children, next stages, sleeps, wake-ups, follow-up jobs) as `tasks`, and the callbacks' tasks
#   cleanup    runs the scheduled cleanup and the app's schedules: Firestore; the artifact bucket (purges expired
#              jobs' artifacts); re-enqueues lapsed jobs after checking their task is gone (create and read
#              tasks on the job queues, as `tasks`); submits scheduled jobs; sends callbacks a worker could not
#   tasks      the identity in Cloud Tasks' OIDC tokens: may invoke the task handler, nothing else
#   scheduler  the identity in Cloud Scheduler's OIDC tokens: may invoke the cleanup function, nothing else
#   build      builds the functions' images: writes logs, reads the uploaded source, pushes to its repository
#
# Grants are on the resource (queue, bucket, service, service account, secret), never project-wide, except
# roles/datastore.user (Firestore has no per-collection IAM), log writing, and the build's read of the Cloud
# Functions source bucket (a project grant with a condition naming that one bucket, see below).

resource "google_service_account" "api" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-api"
  display_name = "oncetask API"
}

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-worker"
  display_name = "oncetask task handler"
}

resource "google_service_account" "cleanup" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-cleanup"
  display_name = "oncetask cleanup"
}

resource "google_service_account" "tasks" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-tasks"
  display_name = "oncetask Cloud Tasks caller (OIDC identity)"
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "oncetask Cloud Scheduler caller (OIDC identity)"
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "oncetask function builds"
}

# Firestore: the three functions read and write jobs, results and failed_tasks.

resource "google_project_iam_member" "api_datastore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.api.member
}

resource "google_project_iam_member" "worker_datastore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.worker.member
}

resource "google_project_iam_member" "cleanup_datastore" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = google_service_account.cleanup.member
}

# The queues. roles/cloudtasks.enqueuer is tasks.create (and fullView) only; each function gets it on exactly the
# queues its code creates tasks on. Callback tasks carry no OIDC token (they go to the callers' URLs).

resource "google_cloud_tasks_queue_iam_member" "api_enqueuer" {
  for_each = google_cloud_tasks_queue.jobs

  project  = var.project_id
  name     = each.value.name
  location = each.value.location
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.api.member
}

resource "google_cloud_tasks_queue_iam_member" "worker_enqueuer" {
  for_each = google_cloud_tasks_queue.jobs

  project  = var.project_id
  name     = each.value.name
  location = each.value.location
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.worker.member
}

resource "google_cloud_tasks_queue_iam_member" "cleanup_enqueuer" {
  for_each = google_cloud_tasks_queue.jobs

  project  = var.project_id
  name     = each.value.name
  location = each.value.location
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.cleanup.member
}

# The cleanup asks whether a waiting job's task still exists (GetTask) before it re-enqueues, and logs each queue's
# figures (GetQueue with its stats) for the oldest-task alert; the API reads the same figures for GET /stats.
resource "google_cloud_tasks_queue_iam_member" "cleanup_viewer" {
  for_each = local.all_queues

  project  = var.project_id
  name     = each.value.name
  location = each.value.location
  role     = "roles/cloudtasks.viewer"
  member   = google_service_account.cleanup.member
}

resource "google_cloud_tasks_queue_iam_member" "api_viewer" {
  for_each = local.all_queues

  project  = var.project_id
  name     = each.value.name
  location = each.value.location
  role     = "roles/cloudtasks.viewer"
  member   = google_service_account.api.member
}

# A scheduled job cancelled before its time: the API deletes its task, which would otherwise still be dispatched.
# DeleteTask needs cloudtasks.tasks.delete, which the enqueuer role lacks; roles/cloudtasks.taskDeleter is that
# permission alone.
resource "google_cloud_tasks_queue_iam_member" "api_task_deleter" {
  for_each = google_cloud_tasks_queue.jobs

  project  = var.project_id
  name     = each.value.name
  location = each.value.location
  role     = "roles/cloudtasks.taskDeleter"
  member   = google_service_account.api.member
}

# Callbacks are sent after a job's terminal commit: by the worker that ended it, by the API when it cancels a job,
# and by the cleanup for those neither got to send.

resource "google_cloud_tasks_queue_iam_member" "api_sends_callbacks" {
  project  = var.project_id
  name     = google_cloud_tasks_queue.callbacks.name
  location = google_cloud_tasks_queue.callbacks.location
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.api.member
}

resource "google_cloud_tasks_queue_iam_member" "worker_sends_callbacks" {
  project  = var.project_id
  name     = google_cloud_tasks_queue.callbacks.name
  location = google_cloud_tasks_queue.callbacks.location
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.worker.member
}

resource "google_cloud_tasks_queue_iam_member" "cleanup_sends_callbacks" {
  project  = var.project_id
  name     = google_cloud_tasks_queue.callbacks.name
  location = google_cloud_tasks_queue.callbacks.location
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.cleanup.member
}

# Creating a task whose OIDC token names `tasks` requires iam.serviceAccounts.actAs on `tasks`, and only on it.

resource "google_service_account_iam_member" "api_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.api.member
}

resource "google_service_account_iam_member" "worker_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.worker.member
}

resource "google_service_account_iam_member" "cleanup_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.cleanup.member
}

# The callback secret (callback_secret): read by the three functions that send URL callbacks, on that secret only.
# Cloud Run checks the grant when it deploys a revision, so the functions wait for it (time_sleep below).

resource "google_secret_manager_secret_iam_member" "api_reads_callback_secret" {
  count = var.callback_secret != null ? 1 : 0

  project   = var.project_id
  secret_id = var.callback_secret.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.api.member
}

resource "google_secret_manager_secret_iam_member" "worker_reads_callback_secret" {
  count = var.callback_secret != null ? 1 : 0

  project   = var.project_id
  secret_id = var.callback_secret.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.worker.member
}

resource "google_secret_manager_secret_iam_member" "cleanup_reads_callback_secret" {
  count = var.callback_secret != null ? 1 : 0

  project   = var.project_id
  secret_id = var.callback_secret.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.cleanup.member
}

# Artifacts: the task handler writes and deletes a job's objects; the cleanup purges expired jobs' objects; the
# API removes the partial objects of a job cancelled while it waits (it lists the job's prefix and deletes).

resource "google_storage_bucket_iam_member" "api_artifacts" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = google_service_account.api.member
}

resource "google_storage_bucket_iam_member" "worker_artifacts" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.worker.member
}

resource "google_storage_bucket_iam_member" "cleanup_artifacts" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.cleanup.member
}

# Invocation. By default only api_invoker_members reach the API, each with a Google-signed ID token, which the
# API checks again. allUsers becomes an invoker only where an explicit opt-in needs callers Cloud Run's IAM
# cannot admit (access.tf): anonymous submissions (no token), Firebase sign-in (a token IAM does not accept), or
# allow_public_api_invoker; the API's own check then decides alone. The service-to-service targets admit only
# their one caller.

resource "google_cloud_run_service_iam_member" "api_public" {
  count = local.api_public_invoker ? 1 : 0

  project  = var.project_id
  location = google_cloudfunctions2_function.api.location
  service  = google_cloudfunctions2_function.api.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "api_invokers" {
  for_each = toset(var.api_invoker_members)

  project  = var.project_id
  location = google_cloudfunctions2_function.api.location
  service  = google_cloudfunctions2_function.api.name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_service_iam_member" "tasks_invokes_process_task" {
  project  = var.project_id
  location = google_cloudfunctions2_function.process_task.location
  service  = google_cloudfunctions2_function.process_task.name
  role     = "roles/run.invoker"
  member   = google_service_account.tasks.member
}

resource "google_cloud_run_service_iam_member" "scheduler_invokes_cleanup" {
  project  = var.project_id
  location = google_cloudfunctions2_function.cleanup.location
  service  = google_cloudfunctions2_function.cleanup.name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# Builds: logs, the source, and pushing images to the stack's own repository.

resource "google_project_iam_member" "build_logs" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

# Cloud Functions (2nd gen) copies the uploaded object to gcf-v2-sources-<project number>-<region>, and the build
# downloads it from THERE: without this grant the first build fails with "Access to bucket gcf-v2-sources-...
# denied" (hashicorp/terraform-provider-google#20571). That bucket is created by Cloud Functions on the first
# deployment in the region, so a grant on the bucket itself could fail on a new project; a project-level grant
# whose condition names the bucket and its objects works before the bucket exists and reaches nothing else.
resource "google_project_iam_member" "build_reads_gcf_sources" {
  project = var.project_id
  role    = "roles/storage.objectViewer"
  member  = google_service_account.build.member

  condition {
    title       = "${var.name_prefix}-gcf-v2-sources"
    description = "Only the Cloud Functions source bucket of ${var.region}"
    expression  = "resource.name == \"projects/_/buckets/${local.gcf_sources_bucket}\" || resource.name.startsWith(\"projects/_/buckets/${local.gcf_sources_bucket}/objects/\")"
  }
}

resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  project    = var.project_id
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

# IAM grants are eventually consistent: Cloud Build may not see them for a minute, Cloud Run checks a revision's
# access to its secrets when it deploys it, and a function that starts before its queue and Firestore grants have
# propagated answers its first requests with PermissionDenied. The provider's own example waits the same way
# before building a function with a custom build account. Every function depends on this wait, which follows
# every grant except the invoker grants (those are on the functions themselves).
resource "time_sleep" "grants_propagate" {
  create_duration = "${var.iam_propagation_seconds}s"

  depends_on = [
    google_project_iam_member.api_datastore,
    google_project_iam_member.worker_datastore,
    google_project_iam_member.cleanup_datastore,
    google_cloud_tasks_queue_iam_member.api_enqueuer,
    google_cloud_tasks_queue_iam_member.worker_enqueuer,
    google_cloud_tasks_queue_iam_member.cleanup_enqueuer,
    google_cloud_tasks_queue_iam_member.cleanup_viewer,
    google_cloud_tasks_queue_iam_member.api_viewer,
    google_cloud_tasks_queue_iam_member.api_task_deleter,
    google_cloud_tasks_queue_iam_member.api_sends_callbacks,
    google_cloud_tasks_queue_iam_member.worker_sends_callbacks,
    google_cloud_tasks_queue_iam_member.cleanup_sends_callbacks,
    google_service_account_iam_member.api_acts_as_tasks,
    google_service_account_iam_member.worker_acts_as_tasks,
    google_service_account_iam_member.cleanup_acts_as_tasks,
    google_secret_manager_secret_iam_member.api_reads_callback_secret,
    google_secret_manager_secret_iam_member.worker_reads_callback_secret,
    google_secret_manager_secret_iam_member.cleanup_reads_callback_secret,
    google_storage_bucket_iam_member.api_artifacts,
    google_storage_bucket_iam_member.worker_artifacts,
    google_storage_bucket_iam_member.cleanup_artifacts,
    google_project_iam_member.build_logs,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build_reads_gcf_sources,
    google_artifact_registry_repository_iam_member.build_pushes_images,
  ]
}

# Its earlier name; the wait is not repeated on a stack that has it.
moved {
  from = time_sleep.build_grants_propagate
  to   = time_sleep.grants_propagate
}
