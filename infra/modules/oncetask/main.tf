# oncetask on Google Cloud, as a module: give it a bundle (`oncetask bundle`), get the whole stack. One file per
# concern:
#   main.tf        the bundle's manifest (read and checked by ./manifest), derived names and URLs, the APIs
#   identities.tf  service accounts and every IAM grant (least privilege, on the resource wherever possible)
#   storage.tf     the artifact bucket (retention lifecycle), the source bucket, the image repository
#   access.tf      who may call the API and read Firestore directly: pure decisions over the variables
#   firestore.tf   the database, composite indexes (firestore.indexes.json beside this file), TTL policies, the
#                  security rules' release
#   queue.tf       the Cloud Tasks queues of the manifest: every job queue, and the callbacks queue
#   functions.tf   the three 2nd gen functions built from the bundle
#   scheduler.tf   the cleanup's schedule, and one job per schedule of the app

# The bundle's manifest (App.manifest() of the app it was built from): the single source of the queues, their
# retry and rate settings, the job types' stage timeouts and the schedules. The submodule has no provider: a
# manifest it refuses stops the plan before anything is created, with a message naming what is wrong.
module "manifest" {
  source = "./manifest"

  path                      = "${var.source_dir}/oncetask.json"
  dispatch_deadline_seconds = var.dispatch_deadline_seconds
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  firestore_location = var.firestore_location != "" ? var.firestore_location : var.region
  artifact_bucket    = var.artifact_bucket_name != "" ? var.artifact_bucket_name : "${var.project_id}-${var.name_prefix}-artifacts"

  function_names = {
    api          = "${var.name_prefix}-api"
    process_task = "${var.name_prefix}-process-task"
    cleanup      = "${var.name_prefix}-cleanup"
  }

  # Each function's deterministic run.app URL, https://SERVICE-PROJECT_NUMBER.REGION.run.app (Cloud Run's
  # documented format, known before the service exists). The task handler and the cleanup check that an ID
  # token's audience is their own URL, so they must know it at creation: it cannot come from their own
  # attributes. Cloud Run's invoker check accepts a token for any of the service's run.app URLs, and requests
  # to a run.app URL from Cloud Tasks and Cloud Scheduler of the same project count as internal ingress.
  # (The cloudfunctions.net URL in the functions' `url` attribute does not: it is never used here.)
  run_app_urls = {
    for key, name in local.function_names :
    key => "https://${name}-${data.google_project.this.number}.${var.region}.run.app"
  }

  # Where Cloud Functions (2nd gen) copies the uploaded source before the build reads it.
  gcf_sources_bucket = "gcf-v2-sources-${data.google_project.this.number}-${var.region}"

  labels = merge({ "managed-by" = "terraform", "oncetask-stack" = var.name_prefix }, var.labels)
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset(concat(
    [
      "artifactregistry.googleapis.com",
      "cloudbuild.googleapis.com",
      "cloudfunctions.googleapis.com",
      "cloudresourcemanager.googleapis.com",
      "cloudscheduler.googleapis.com",
      "cloudtasks.googleapis.com",
      "firestore.googleapis.com",
      "iam.googleapis.com",
      "logging.googleapis.com",
      "run.googleapis.com",
      "storage.googleapis.com",
    ],
    var.callback_secret != null ? ["secretmanager.googleapis.com"] : [],
    var.deploy_firestore_rules ? ["firebaserules.googleapis.com"] : [],
  )) : toset([])

  project = var.project_id
  service = each.key
  # Destroying this stack must not switch APIs off for anything else in the project.
  disable_on_destroy = false
}
