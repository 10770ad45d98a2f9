# The Native-mode database with pessimistic transactions (what the fenced lease is tested against locally).
# A project that already has the database sets create_firestore_database = false (or imports it); a named
# database (firestore_database) keeps oncetask apart from an app's own (default) one.
resource "google_firestore_database" "main" {
  count = var.create_firestore_database ? 1 : 0

  project          = var.project_id
  name             = var.firestore_database
  location_id      = local.firestore_location
  type             = "FIRESTORE_NATIVE"
  concurrency_mode = "PESSIMISTIC"

  # The jobs are the system's memory: a `terraform destroy` must not take them along.
  delete_protection_state = "DELETE_PROTECTION_ENABLED"
  deletion_policy         = "ABANDON"

  depends_on = [google_project_service.apis]
}

locals {
  # Every reference to the database goes through this name, which waits for the database when it is created.
  database = var.create_firestore_database ? google_firestore_database.main[0].name : var.firestore_database
}

# Composite indexes: firestore.indexes.json beside this file is the one list (in the Firebase CLI's format);
# tests/infra checks that every query shape in functions/oncetask/jobstore.py has its index and no more.
locals {
  composite_indexes = {
    for index in jsondecode(file("${path.module}/firestore.indexes.json")).indexes :
    join("__", concat([index.collectionGroup], [for f in index.fields : "${f.fieldPath}-${f.order}"])) => index
  }
}

resource "google_firestore_index" "composite" {
  for_each = local.composite_indexes

  project     = var.project_id
  database    = local.database
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
  project    = var.project_id
  database   = local.database
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
  project    = var.project_id
  database   = local.database
  collection = "results"
  field      = "expire_at"

  ttl_config {}
  index_config {}

  # Firestore runs one field-configuration operation at a time per database: apply them in turn.
  depends_on = [google_firestore_field.jobs_expire_at]
}

resource "google_firestore_field" "failed_tasks_expire_at" {
  project    = var.project_id
  database   = local.database
  collection = "failed_tasks"
  field      = "expire_at"

  ttl_config {}
  index_config {}

  depends_on = [google_firestore_field.results_expire_at]
}
