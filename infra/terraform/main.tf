# oncetask on Google Cloud: the root module. One file per concern:
#   identities.tf  service accounts and every IAM grant (least privilege, resource-level where possible)
#   storage.tf     the artifact bucket (retention lifecycle), the source bucket, the build image repository
#   firestore.tf   the database, composite indexes from firestore.indexes.json, TTL policies
#   queue.tf       the Cloud Tasks queue (retry and rate settings from settings.py's defaults)
#   functions.tf   the three 2nd gen functions built from functions/
#   scheduler.tf   the 15-minute cleanup job

locals {
  repo_root          = "${path.module}/../.."
  firestore_location = var.firestore_location != "" ? var.firestore_location : var.region
  artifact_bucket    = var.artifact_bucket_name != "" ? var.artifact_bucket_name : "${var.project_id}-oncetask-artifacts"

  function_names = {
    api          = "${var.name_prefix}-api"
    process_task = "${var.name_prefix}-process-task"
    cleanup      = "${var.name_prefix}-cleanup"
  }
  # A 2nd gen function answers on https://REGION-PROJECT.cloudfunctions.net/NAME (its `url` attribute) as well
  # as on its run.app URI. The functions must know their own URL before they exist (the task handler and the
  # cleanup function check that an ID token's audience is their URL), so it is derived here; a postcondition
  # on each function fails the apply if the platform ever reports another URL.
  function_urls = {
    for key, name in local.function_names : key => "https://${var.region}-${var.project_id}.cloudfunctions.net/${name}"
  }
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ])

  service = each.key
  # Destroying this stack must not switch APIs off for anything else in the project.
  disable_on_destroy = false
}
