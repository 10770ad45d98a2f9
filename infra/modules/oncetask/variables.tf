# Inputs of the oncetask module. The queues, their retry and rate settings and the schedules are NOT inputs: they
# come from the bundle's oncetask.json (App.manifest()), so the code that decides "was that the last attempt?" or
# which queue a job goes to, and the infrastructure, cannot disagree. The defaults below that the runtime also
# reads (retention, lease, deadline) equal functions/oncetask/settings.py's; tests/infra checks that they do.

variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the queues, the scheduler jobs and the buckets."
  type        = string
  default     = "us-central1"
}

variable "source_dir" {
  description = "A bundle directory written by `oncetask bundle` (main.py, requirements.txt, oncetask/, your packages, oncetask.json). It is zipped as the functions' source; its oncetask.json says which queues and schedules to create."
  type        = string

  validation {
    condition = alltrue([
      for file in ["main.py", "requirements.txt", "oncetask.json", "oncetask/__init__.py"] :
      fileexists("${var.source_dir}/${file}")
    ])
    error_message = "source_dir must be a bundle directory holding main.py, requirements.txt, oncetask.json and oncetask/: build it first with `oncetask bundle --app MODULE:ATTR --out DIR`."
  }
}

variable "name_prefix" {
  description = "Prefix of every service account, function, bucket and scheduler job name; two stacks in one project need two prefixes."
  type        = string
  default     = "oncetask"

  validation {
    # Service account IDs are at most 30 characters ("<prefix>-scheduler"), and a function's deterministic
    # run.app host label "<prefix>-process-task-<project number>" must stay within 63.
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}$", var.name_prefix))
    error_message = "name_prefix must be 2-15 characters of lowercase letters, digits and '-', starting with a letter."
  }
}

variable "labels" {
  description = "Labels added to the functions and buckets."
  type        = map(string)
  default     = {}
}

variable "enable_apis" {
  description = "Enable the Google APIs the stack uses (never disabled on destroy). Turn off where a platform team enables APIs."
  type        = bool
  default     = true
}

# Who may call the API (access.tf). The defaults admit only api_invoker_members, each with a Google ID token that
# Cloud Run and then the API check; nobody without a token reads, lists, submits, retries or cancels anything.
# Each opt-in says what it exposes.

variable "api_invoker_members" {
  description = "IAM principals allowed to invoke the API, e.g. [\"serviceAccount:backend@PROJECT.iam.gserviceaccount.com\", \"group:ops@example.com\"]. They call it with a Google ID token whose audience is api_audience; each token's subject owns the jobs it submits and sees only those."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.api_invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "api_invoker_members must name principals; a public API is an explicit opt-in: allow_anonymous_submissions, firebase_auth or allow_public_api_invoker."
  }
}

variable "api_audience" {
  description = "Audience the API requires in callers' Google ID tokens (ONCETASK_API_AUDIENCE). Empty: the API's deterministic run.app URL, which Cloud Run's invoker check also accepts."
  type        = string
  default     = ""
}

variable "allow_anonymous_submissions" {
  description = "A public API, on purpose: anyone on the internet may submit jobs without a token (ONCETASK_ALLOW_ANONYMOUS_SUBMISSIONS=true, and roles/run.invoker for allUsers on the API, since Cloud Run admits no request without a token otherwise). Each such job answers with a capability, a secret without which nobody but an operator reads, retries or cancels it; a caller without a token lists nothing. Exposes: submissions, and what they cost, to anyone (the queues' rates bound the pace, not the number); the status page and GET /healthz to anyone. Off: every job call needs an ID token."
  type        = bool
  default     = false
}

variable "firebase_auth" {
  description = "People as callers: the API accepts Firebase Authentication / Identity Platform ID tokens of project_id (null: this project), and their uid owns the jobs they submit (also request.auth.uid in firestore.rules). api_key (the web API key, a public value) lets the status page sign people in; auth_domain defaults to <project_id>.firebaseapp.com. Cloud Run's invoker IAM does not accept Firebase tokens, so this also grants roles/run.invoker to allUsers on the API and the API's own token check is the only one: anyone may then reach the API, and every account that can sign in to that Firebase project (and, as with allow_public_api_invoker, every Google account with an ID token for api_audience) may submit jobs of its own. null: nobody signs in."
  type = object({
    project_id  = optional(string)
    api_key     = optional(string, "")
    auth_domain = optional(string, "")
  })
  default = null

  validation {
    condition     = try(var.firebase_auth.project_id == null, true) || can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.firebase_auth.project_id))
    error_message = "firebase_auth.project_id is the Firebase project's ID (6-30 lowercase letters, digits and '-'), not its number or display name; leave it out for this project."
  }
  validation {
    condition     = try(var.firebase_auth.api_key == "", true) || can(regex("^[A-Za-z0-9_-]{30,60}$", var.firebase_auth.api_key))
    error_message = "firebase_auth.api_key is the web API key of the Firebase project's config (apiKey, e.g. \"AIza...\"), alone."
  }
  validation {
    condition     = try(var.firebase_auth.auth_domain == "", true) || can(regex("^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", var.firebase_auth.auth_domain))
    error_message = "firebase_auth.auth_domain is a host name such as my-project.firebaseapp.com, without https:// or a path."
  }
}

variable "operators" {
  description = "Who sees, lists, retries and cancels every job through the API (ONCETASK_OPERATORS): verified emails and/or token subjects, e.g. [\"ops@example.com\", \"112233445566778899\"]. Operators still need a way in (api_invoker_members, or firebase_auth). A Firebase user with the custom claim oncetask_operator: true is an operator too, of the API and of firestore.rules; those listed here are operators of the API only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.operators : can(regex("^[^,\\s]+$", o))])
    error_message = "operators are emails or token subjects, one per entry, without commas or spaces."
  }
  validation {
    condition     = alltrue([for o in var.operators : !can(regex("^(user|serviceAccount|group|domain|principal|principalSet|allUsers|allAuthenticatedUsers)(:|$)", o))])
    error_message = "operators are emails or token subjects as the API sees them (ops@example.com), not IAM members (user:ops@example.com)."
  }
}

variable "allow_public_api_invoker" {
  description = "Grant roles/run.invoker on the API to allUsers while the API still requires an ID token of every job call: anyone may reach it, and any Google account's ID token for api_audience is then a caller that may submit jobs of its own (not only api_invoker_members'). Implied by allow_anonymous_submissions and firebase_auth; on its own, for callers outside this project's IAM (services of other organisations). Off: only api_invoker_members reach the API, unless one of those is set."
  type        = bool
  default     = false
}

variable "allow_unauthenticated_api_calls" {
  description = "Removed: the deployed API always requires a token (ONCETASK_API_REQUIRE_AUTH=false, every caller the shared owner anonymous, is local development only). For a public API set allow_anonymous_submissions = true. Only null or false is accepted; remove the argument."
  type        = bool
  default     = null

  validation {
    condition     = var.allow_unauthenticated_api_calls != true
    error_message = "allow_unauthenticated_api_calls is gone: the deployed API no longer runs without token checks (every caller the shared owner \"anonymous\" is for local development only). For a public API set allow_anonymous_submissions = true: callers without a token may submit, and each job answers with a capability only its holder (or an operator) can use. Remove allow_unauthenticated_api_calls."
  }
}

# Settings the runtime reads (ONCETASK_*). Defaults equal functions/oncetask/settings.py's.

variable "retention_days" {
  description = "Finished jobs, their results and artifacts are purged after this many days (settings.retention_days); the artifact bucket's lifecycle rule deletes a day later as a backstop."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days >= 1
    error_message = "retention_days must be at least 1."
  }
}

variable "lease_ttl_seconds" {
  description = "A dead worker's job is free again after this long (settings.lease_ttl_seconds); the worker renews it every third of it."
  type        = number
  default     = 120

  validation {
    condition     = var.lease_ttl_seconds >= 10
    error_message = "lease_ttl_seconds must be at least 10."
  }
}

variable "dispatch_deadline_seconds" {
  description = "How long Cloud Tasks waits for the task handler's answer (settings.dispatch_deadline_seconds); also the handler's timeout. Every job type's stage timeout in the manifest must fit in it."
  type        = number
  default     = 600

  validation {
    condition     = var.dispatch_deadline_seconds >= 15 && var.dispatch_deadline_seconds <= 1800
    error_message = "dispatch_deadline_seconds must be between 15 and 1800 (Cloud Tasks' range for HTTP targets)."
  }
}

variable "environment_variables" {
  description = "Extra environment variables of all three functions (e.g. settings a newer runtime reads, such as ONCETASK_OWNER_QUOTA). The module's own ONCETASK_* values win over these. Never a secret (the callback secret comes from Secret Manager: callback_secret), and never a development or test setting: ONCETASK_API_REQUIRE_AUTH, the certificate and sign-in URLs, the emulator hosts and ONCETASK_ALLOW_LOCAL_CALLBACKS are refused."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.environment_variables), "ONCETASK_CALLBACK_SECRET")
    error_message = "ONCETASK_CALLBACK_SECRET must not be a plain environment variable (it would be readable in the function's configuration and in the state): name its Secret Manager secret in callback_secret."
  }
  validation {
    condition     = !contains(keys(var.environment_variables), "ONCETASK_API_REQUIRE_AUTH")
    error_message = "ONCETASK_API_REQUIRE_AUTH is not a deployment's setting: the deployed API always requires a token (false, every caller the shared owner \"anonymous\", is local development only). For a public API set allow_anonymous_submissions = true."
  }
  validation {
    condition     = length(setintersection(keys(var.environment_variables), ["ONCETASK_OIDC_CERTS_URL", "ONCETASK_FIREBASE_CERTS_URL", "ONCETASK_STATUS_SIGN_IN_URL"])) == 0
    error_message = "ONCETASK_OIDC_CERTS_URL, ONCETASK_FIREBASE_CERTS_URL and ONCETASK_STATUS_SIGN_IN_URL are for tests only: they make the functions trust tokens signed by keys other than Google's and Firebase's, or sign people in elsewhere. Remove them."
  }
  validation {
    condition     = length(setintersection(keys(var.environment_variables), ["FIRESTORE_EMULATOR_HOST", "CLOUD_TASKS_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "ONCETASK_ALLOW_LOCAL_CALLBACKS"])) == 0
    error_message = "FIRESTORE_EMULATOR_HOST, CLOUD_TASKS_EMULATOR_HOST, STORAGE_EMULATOR_HOST and ONCETASK_ALLOW_LOCAL_CALLBACKS are for local development only (the emulators, plain-http callbacks to the same machine). Remove them."
  }
}

variable "callback_secret" {
  description = "The Secret Manager secret, in project_id, that signs URL completion callbacks (ONCETASK_CALLBACK_SECRET of the API, the task handler and the cleanup, which each get roles/secretmanager.secretAccessor on this secret only). version: a version number, or \"latest\" (read when an instance starts: after a rotation, redeploy or wait for new instances). null: no secret, and submissions with a URL callback are refused (422); follow-up job callbacks still work."
  type = object({
    secret_id = string
    version   = optional(string, "latest")
  })
  default = null

  validation {
    condition     = var.callback_secret == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.callback_secret.secret_id))
    error_message = "callback_secret.secret_id is the secret's ID in project_id (letters, digits, '_', '-'), not its full resource name."
  }
  validation {
    condition     = var.callback_secret == null || can(regex("^(latest|[1-9][0-9]*)$", var.callback_secret.version))
    error_message = "callback_secret.version must be a version number or \"latest\"."
  }
}

# Storage and Firestore.

variable "artifact_bucket_name" {
  description = "Bucket of the stages' artifacts (settings.bucket). Empty: <project_id>-<name_prefix>-artifacts."
  type        = string
  default     = ""
}

variable "firestore_database" {
  description = "Firestore database of the jobs (settings.database): \"(default)\" or a named database such as \"oncetask\"."
  type        = string
  default     = "(default)"
}

variable "create_firestore_database" {
  description = "Create the Firestore database. Set false when it exists already (its mode must be Native; oncetask's leases are tested with pessimistic concurrency)."
  type        = bool
  default     = true
}

variable "firestore_location" {
  description = "Firestore database location (a region such as us-central1, or a multi-region such as nam5); it cannot change after creation. Empty: region."
  type        = string
  default     = ""
}

variable "deploy_firestore_rules" {
  description = "Release firestore_rules_file as the security rules of firestore_database (a google_firebaserules_ruleset and its release, cloud.firestore or cloud.firestore/<database>). They guard client SDK access only (browsers and apps signed in with Firebase); the functions' server libraries bypass rules. Set false when the database's rules are released elsewhere, e.g. an app that shares (default) and deploys its own rules, which must then include oncetask's matches."
  type        = bool
  default     = true
}

variable "firestore_rules_file" {
  description = "The Firestore security rules to release (deploy_firestore_rules). null: firestore.rules at the root of the oncetask repository this module comes from, which denies everything but a signed-in user's reads of the jobs, results and dead letters they own (and an operator's, by the custom claim oncetask_operator)."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_rules_file == null || can(regex("service\\s+cloud\\.firestore", file(var.firestore_rules_file)))
    error_message = "firestore_rules_file must name a readable Firestore rules file (one declaring `service cloud.firestore`)."
  }
}

# The functions.

variable "python_runtime" {
  description = "Cloud Run functions runtime."
  type        = string
  default     = "python312"

  validation {
    condition     = contains(["python311", "python312", "python313"], var.python_runtime)
    error_message = "python_runtime must be python311, python312 or python313."
  }
}

variable "function_memory" {
  description = "Memory of each function instance."
  type        = string
  default     = "512Mi"
}

variable "task_handler_max_instances" {
  description = "Instance cap of the task handler. null: the sum of the job queues' max_concurrent_dispatches from the manifest (one request per instance, so every dispatch the queues allow at once has an instance). Set it lower only to fit the project's Cloud Run quota: a dispatch beyond the cap gets 429 and spends one of the queue's deliveries."
  type        = number
  default     = null

  validation {
    condition     = var.task_handler_max_instances == null || try(var.task_handler_max_instances >= 1, false)
    error_message = "task_handler_max_instances must be at least 1 (or null)."
  }
}

variable "api_max_instances" {
  description = "Instance cap of the API."
  type        = number
  default     = 20
}

variable "private_ingress" {
  description = "Ingress of the task handler and the cleanup function. ALLOW_INTERNAL_ONLY admits Cloud Tasks and Cloud Scheduler of the same project, which call the run.app URL; invoker IAM guards them either way."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_ALL"], var.private_ingress)
    error_message = "private_ingress must be ALLOW_INTERNAL_ONLY or ALLOW_ALL."
  }
}

variable "cleanup_schedule" {
  description = "Cron schedule of the cleanup (frees lapsed leases, re-enqueues lost tasks, sends pending callbacks, purges expired jobs), in UTC. The app's own schedules come from its manifest."
  type        = string
  default     = "*/15 * * * *"
}

variable "iam_propagation_seconds" {
  description = "How long to wait after granting the build identity its roles (and the functions their callback secret) before the functions are deployed: IAM grants take a while to reach Cloud Build and Cloud Run, and a build that starts too early fails on the source download."
  type        = number
  default     = 60
}
