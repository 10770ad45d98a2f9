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

# Security rules: what a client SDK (a browser or an app signed in with Firebase) may read or write directly. The
# functions' server libraries bypass them (IAM governs those), so the product works without them; they decide
# whether a signed-in user can read their own jobs straight from Firestore, and that nobody else can.
#
# A ruleset is immutable and a release cannot be repointed by the provider (ruleset_name forces a new release):
# a change of the rules creates a ruleset, then replaces the release. Terraform destroys the release before it
# creates the new ruleset (create_before_destroy on the ruleset does not reorder that), so for that moment, and
# if the new rules fail to compile (the Rules API checks them on create), the database has no release and client
# SDK requests are denied: the failure closes, never opens. The old ruleset is kept until the new release exists,
# to release it again by hand (gcloud firebase security-rules) if needed.
resource "google_firebaserules_ruleset" "firestore" {
  count = var.deploy_firestore_rules ? 1 : 0

  project = var.project_id

  source {
    files {
      name    = basename(local.firestore_rules_file)
      content = file(local.firestore_rules_file)
    }
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = fileexists(local.firestore_rules_file)
      error_message = "No Firestore rules file at ${local.firestore_rules_file}: set firestore_rules_file (or deploy_firestore_rules = false where the database's rules are released elsewhere)."
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_firebaserules_release" "firestore" {
  count = var.deploy_firestore_rules ? 1 : 0

  project      = var.project_id
  name         = local.firestore_rules_release
  ruleset_name = "projects/${var.project_id}/rulesets/${google_firebaserules_ruleset.firestore[0].name}"

  # The database the release names must exist first.
  depends_on = [google_firestore_database.main]
}
