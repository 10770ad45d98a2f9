variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the queues, the scheduler jobs and the buckets."
  type        = string
  default     = "us-central1"
}

variable "api_invoker_members" {
  description = "IAM principals allowed to call the API, e.g. [\"serviceAccount:shop-backend@PROJECT.iam.gserviceaccount.com\"]."
  type        = list(string)
  default     = []
}

variable "callback_secret" {
  description = "The Secret Manager secret that signs URL callbacks, e.g. {secret_id = \"catalog-callback-secret\", version = \"1\"}. null: URL callbacks are refused."
  type = object({
    secret_id = string
    version   = optional(string, "latest")
  })
  default = null
}

variable "operators" {
  description = "Who sees, lists, retries and cancels every job: verified emails or token subjects, e.g. [\"ops@example.com\"] (not IAM members)."
  type        = list(string)
  default     = []
}

variable "firebase_auth" {
  description = "People signing in with Firebase Authentication: {api_key = \"AIza...\"} (the web API key; project_id defaults to this project). Opens the API's invoker to allUsers; its own token check decides. null: nobody signs in."
  type = object({
    project_id  = optional(string)
    api_key     = optional(string, "")
    auth_domain = optional(string, "")
  })
  default = null
}
