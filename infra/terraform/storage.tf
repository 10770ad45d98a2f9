# The stages' artifacts: private, and bounded (seed 004) by a lifecycle rule matching the retention setting.
# The cleanup purges a finished job's objects with its documents; the rule is the backstop for anything it
# missed (a job document removed by the TTL policy first, an artifact of a crashed attempt).
resource "google_storage_bucket" "artifacts" {
  name                        = local.artifact_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # The backstop of the cleanup's purge (which goes first: a job is purged `retention_days` after it ended),
  # for objects a purge or a Firestore TTL deletion left behind, and for a late upload of a worker that had
  # lost its lease.
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

# The zipped functions/ source, one object per content hash.
resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-${var.name_prefix}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  depends_on = [google_project_service.apis]
}

# The functions' container images, in a repository of this stack so the build identity is granted on it
# alone; old images are deleted, a few recent ones kept for rollback.
resource "google_artifact_registry_repository" "functions" {
  location      = var.region
  repository_id = "${var.name_prefix}-functions"
  format        = "DOCKER"
  description   = "oncetask function images"

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
