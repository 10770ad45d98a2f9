# The repository's reference deployment: the catalog example app (examples/catalog, what functions/main.py
# serves), deployed with the oncetask module. Build its bundle first, from the repository root:
#
#   oncetask bundle --app catalog:app --project examples/catalog --out build/bundle
#
# cloudbuild.yaml does exactly that before it plans. The bundle's oncetask.json decides the queues (every lane's,
# the callbacks queue), their settings and the app's schedules; with the default settings the queue prefix is
# "oncetask", this stack's name_prefix.

module "oncetask" {
  source = "../modules/oncetask"

  project_id = var.project_id
  region     = var.region
  source_dir = var.bundle_dir != "" ? var.bundle_dir : "${path.root}/../../build/bundle"

  # Secure by default: no caller without a Google-signed ID token; only these principals may invoke the API.
  api_invoker_members = var.api_invoker_members

  # Who else: operators (see every job) and people signing in with Firebase (null: nobody; setting it opens the
  # API's invoker to allUsers, and the API's token check decides alone). Anonymous submissions stay off here:
  # a public API is a change of this file, reviewed (allow_anonymous_submissions on the module).
  operators     = var.operators
  firebase_auth = var.firebase_auth

  firestore_location = var.firestore_location

  # URL callbacks are signed with this Secret Manager secret; without it they are refused (422).
  callback_secret = var.callback_secret

  # Released as the security rules of the jobs' database: clients read only their own jobs (the repository's file).
  firestore_rules_file = "${path.root}/../../firestore.rules"
}
