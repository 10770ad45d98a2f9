# One identity per role in the system, each granted only what its code calls:
#
#   api        runs the public API: Firestore; creates tasks on the one queue; mints tasks' OIDC tokens as `tasks`;
#              lists and deletes a cancelled job's partial objects
#   worker     runs the task handler: Firestore; objects of the artifact bucket
#   cleanup    runs the scheduled cleanup: Firestore; the artifact bucket (purges expired jobs' artifacts);
#              re-enqueues lapsed jobs, so creates and reads tasks on the queue and mints tokens as `tasks`
#   tasks      the identity in Cloud Tasks' OIDC tokens: may invoke the task handler, nothing else
#   scheduler  the identity in Cloud Scheduler's OIDC token: may invoke the cleanup function, nothing else
#   build      builds the functions' images: writes logs, reads the source bucket, pushes to its repository
#
# Grants are on the resource (queue, bucket, service, service account), never project-wide, except
# roles/datastore.user (Firestore has no per-collection IAM) and log writing.

resource "google_service_account" "api" {
  account_id   = "${var.name_prefix}-api"
  display_name = "oncetask public API"
}

resource "google_service_account" "worker" {
  account_id   = "${var.name_prefix}-worker"
  display_name = "oncetask task handler"
}

resource "google_service_account" "cleanup" {
  account_id   = "${var.name_prefix}-cleanup"
  display_name = "oncetask stale-lease cleanup"
}

resource "google_service_account" "tasks" {
  account_id   = "${var.name_prefix}-tasks"
  display_name = "oncetask Cloud Tasks caller (OIDC identity)"
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "oncetask Cloud Scheduler caller (OIDC identity)"
}

resource "google_service_account" "build" {
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

# The queue: only the API and the cleanup function create tasks, and only on this queue.

resource "google_cloud_tasks_queue_iam_member" "api_enqueuer" {
  name     = google_cloud_tasks_queue.jobs.name
  location = google_cloud_tasks_queue.jobs.location
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.api.member
}

resource "google_cloud_tasks_queue_iam_member" "cleanup_enqueuer" {
  name     = google_cloud_tasks_queue.jobs.name
  location = google_cloud_tasks_queue.jobs.location
  role     = "roles/cloudtasks.enqueuer"
  member   = google_service_account.cleanup.member
}

# The cleanup asks whether a waiting job's task still exists (GetTask) before it re-enqueues.
resource "google_cloud_tasks_queue_iam_member" "cleanup_viewer" {
  name     = google_cloud_tasks_queue.jobs.name
  location = google_cloud_tasks_queue.jobs.location
  role     = "roles/cloudtasks.viewer"
  member   = google_service_account.cleanup.member
}

# Creating a task whose OIDC token names `tasks` requires iam.serviceAccounts.actAs on `tasks`, and only on it.

resource "google_service_account_iam_member" "api_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.api.member
}

resource "google_service_account_iam_member" "cleanup_acts_as_tasks" {
  service_account_id = google_service_account.tasks.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.cleanup.member
}

# Artifacts: the task handler writes and deletes a job's objects; the cleanup purges expired jobs' objects; the
# API removes the partial objects of a job cancelled while it waits (it lists and deletes, never reads or writes).

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

# Invocation: the public API is open to all (it authenticates callers itself when api_require_auth is set);
# the two service-to-service targets admit only their caller's Google-signed ID token.

resource "google_cloud_run_service_iam_member" "api_public" {
  location = google_cloudfunctions2_function.api.location
  service  = google_cloudfunctions2_function.api.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "tasks_invokes_process_task" {
  location = google_cloudfunctions2_function.process_task.location
  service  = google_cloudfunctions2_function.process_task.name
  role     = "roles/run.invoker"
  member   = google_service_account.tasks.member
}

resource "google_cloud_run_service_iam_member" "scheduler_invokes_cleanup" {
  location = google_cloudfunctions2_function.cleanup.location
  service  = google_cloudfunctions2_function.cleanup.name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

# Builds: logs, the uploaded source, and pushing images to the stack's own repository.

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

resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}
