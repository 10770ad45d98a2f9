# The stages' artifacts: private, and bounded (seed 004) by a lifecycle rule one day longer than the retention.
# The cleanup purges an expired job's artifacts first (it deletes the objects its checkpoints name); the rule
# is the backstop for what a purge missed (a job document removed by the TTL policy first, an upload of a
# worker that had lost its lease).
resource "google_storage_bucket" "artifacts" {
  project                     = var.project_id
  name                        = local.artifact_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  lifecycle_rule {
    condition {
      age = var.retention_days + 1
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# The zipped bundle, one object per content hash.
resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  depends_on = [google_project_service.apis]
}

# The functions' container images, in a repository of this stack so the build identity is granted on it
# alone; old images are deleted, a few recent ones kept for rollback.
resource "google_artifact_registry_repository" "functions" {
  project       = var.project_id
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  format        = "DOCKER"
  description   = "oncetask function images"
  labels        = local.labels

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 5
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days
    }
  }

  depends_on = [google_project_service.apis]
}
