# The Native-mode database with pessimistic transactions (what the fenced lease is tested against locally).
resource "google_firestore_database" "main" {
  name             = "(default)"
  location_id      = local.firestore_location
  type             = "FIRESTORE_NATIVE"
  concurrency_mode = "PESSIMISTIC"

  # The jobs are the system's memory: a `terraform destroy` must not take them along.
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.apis]
}

# Composite indexes: firestore.indexes.json at the repository root is the one list (also usable by the
# Firebase CLI); tests/infra checks that every query shape in functions/oncetask/jobstore.py has its index.
locals {
  composite_indexes = {
    for index in jsondecode(file("${local.repo_root}/firestore.indexes.json")).indexes :
    join("__", concat([index.collectionGroup], [for f in index.fields : "${f.fieldPath}-${f.order}"])) => index
  }
}

resource "google_firestore_index" "composite" {
  for_each = local.composite_indexes

  database    = google_firestore_database.main.name
  collection  = each.value.collectionGroup
  query_scope = each.value.queryScope

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value.fieldPath
      order      = fields.value.order
    }
  }
}

# TTL: terminal documents carry `expire_at`; Firestore deletes them some time (typically within a day) after
# it passes. The cleanup still treats an expired job as expired; the policy is the backstop.
#
# jobs.expire_at keeps an ascending single-field index: the cleanup queries it (expire_at < now, in order).
resource "google_firestore_field" "jobs_expire_at" {
  database   = google_firestore_database.main.name
  collection = "jobs"
  field      = "expire_at"

  ttl_config {}
  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION"
    }
  }
}

# Nothing queries results/failed_tasks by expire_at, so their indexes are switched off (an empty index_config):
# an indexed, ever-increasing timestamp only adds write cost and a hot spot.
resource "google_firestore_field" "results_expire_at" {
  database   = google_firestore_database.main.name
  collection = "results"
  field      = "expire_at"

  ttl_config {}
  index_config {}

  # Firestore runs one field-configuration operation at a time per database: apply them in turn.
  depends_on = [google_firestore_field.jobs_expire_at]
}

resource "google_firestore_field" "failed_tasks_expire_at" {
  database   = google_firestore_database.main.name
  collection = "failed_tasks"
  field      = "expire_at"

  ttl_config {}
  index_config {}

  depends_on = [google_firestore_field.results_expire_at]
}
