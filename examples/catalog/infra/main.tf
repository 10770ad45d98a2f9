# The catalog project's own deployment, as a user of oncetask writes it. From examples/catalog, bundle with the
# stack's queue names (the queues are named by the app, `catalog-interactive`..., and must not meet another
# stack's in the project; the module refuses a callbacks queue outside the prefix):
#
#   ONCETASK_QUEUE_PREFIX=catalog ONCETASK_CALLBACK_QUEUE=catalog-callbacks \
#     oncetask bundle --app catalog:app --out build/bundle      # main.py, requirements, oncetask/, catalog/, oncetask.json
#   terraform -chdir=infra init -backend-config="bucket=<state bucket>" -backend-config="prefix=catalog"
#   terraform -chdir=infra apply -var="project_id=<project>"
#
# In a repository of your own, point `source` at oncetask's module with a pinned ref instead of a path:
#   source = "git::https://github.com/<owner>/oncetask.git//infra/modules/oncetask?ref=<tag>"

module "oncetask" {
  source = "../../../infra/modules/oncetask"

  project_id  = var.project_id
  region      = var.region
  name_prefix = "catalog"
  source_dir  = "${path.root}/../build/bundle"

  # Your backends call the API with a Google ID token; nobody else reaches it.
  api_invoker_members = var.api_invoker_members

  # Your operators see every job; people sign in with Firebase only if you set firebase_auth (which lets anyone
  # reach the API: its own token check decides).
  operators     = var.operators
  firebase_auth = var.firebase_auth

  # The thumbnails and imports read images and sheets from gs:// URIs: grant the worker read on those buckets
  # where they are managed (module.oncetask.service_accounts.worker).

  # Callers that pass a callback URL get signed calls: create the secret once (gcloud secrets create
  # catalog-callback-secret --data-file=-) and name it here; without it, URL callbacks are refused (422).
  callback_secret = var.callback_secret

  # The security rules of the jobs' database: clients read only their own jobs. In a repository of your own, copy
  # oncetask's firestore.rules beside this root ("${path.root}/firestore.rules"), or leave this out for the copy
  # the module comes with.
  firestore_rules_file = "${path.root}/../../../firestore.rules"
}

# A catalog job writes products into Firestore collections of its own; the worker's roles/datastore.user covers
# them. Anything else your stages call (another API, a secret) is granted to the worker here.
