# Who may reach what: the API's access settings, whether Cloud Run lets anyone through to it, and which security
# rules guard client access to Firestore. Pure decisions over the variables (no resource, no data source, nothing
# from another file), so tests/infra evaluates this file with Terraform itself beside variables.tf.
#
# The API always requires a caller to prove who it is (ONCETASK_API_REQUIRE_AUTH keeps its default, true; false
# is local development only and environment_variables refuses it). Each opt-in below widens that on purpose:
#   allow_anonymous_submissions  callers without a token may submit; each job answers with its own capability
#   firebase_auth                people signed in with Firebase Authentication / Identity Platform are callers
#   allow_public_api_invoker     anyone reaches the API (any Google account's ID token for its audience is a caller)
# Cloud Run's invoker IAM accepts Google-signed tokens of principals it knows, never a Firebase token and never
# no token: the first two need an allUsers invoker, and the API's own check is then the only one.

locals {
  # A Firebase project of null is this project (the usual case: Firebase added to the Google Cloud project).
  firebase = var.firebase_auth == null ? null : {
    project_id  = coalesce(var.firebase_auth.project_id, var.project_id)
    api_key     = var.firebase_auth.api_key
    auth_domain = var.firebase_auth.auth_domain
  }

  # Settings fields (functions/oncetask/settings.py) of the API's callers; functions.tf merges them into every
  # function's environment. Empty values are the settings' defaults (nobody signs in; no operator by list).
  api_access_env = {
    ONCETASK_ALLOW_ANONYMOUS_SUBMISSIONS = tostring(var.allow_anonymous_submissions)
    ONCETASK_FIREBASE_PROJECT_ID         = local.firebase == null ? "" : local.firebase.project_id
    ONCETASK_FIREBASE_API_KEY            = local.firebase == null ? "" : local.firebase.api_key
    ONCETASK_FIREBASE_AUTH_DOMAIN        = local.firebase == null ? "" : local.firebase.auth_domain
    ONCETASK_OPERATORS                   = join(",", var.operators)
  }

  # allUsers as the API's invoker: only when an opt-in needs callers Cloud Run's IAM cannot admit.
  api_public_invoker = var.allow_public_api_invoker || var.allow_anonymous_submissions || var.firebase_auth != null

  # firestore.rules at the root of the oncetask repository this module comes from (a git or local source holds the
  # whole repository), unless the caller names another file.
  firestore_rules_file = var.firestore_rules_file != null ? var.firestore_rules_file : "${path.module}/../../../firestore.rules"

  # Firestore reads the (default) database's rules from the release "cloud.firestore" and a named database's from
  # "cloud.firestore/<database id>" (what `firebase deploy` and `gcloud firebase security-rules release` use).
  firestore_rules_release = var.firestore_database == "(default)" ? "cloud.firestore" : "cloud.firestore/${var.firestore_database}"
}
