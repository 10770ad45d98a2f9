variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the queue, the scheduler job and the buckets."
  type        = string
  default     = "us-central1"
}

variable "bundle_dir" {
  description = "The bundle `oncetask bundle` wrote. Empty: build/bundle at the repository root."
  type        = string
  default     = ""
}

variable "api_invoker_members" {
  description = "IAM principals allowed to call the API with a Google ID token, e.g. [\"user:you@example.com\"]."
  type        = list(string)
  default     = []
}

variable "firestore_location" {
  description = "Firestore database location (e.g. nam5); it cannot change after creation. Empty: region."
  type        = string
  default     = ""
}
