variable "project_id" {
  description = "The Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, the queue, the scheduler job and the buckets."
  type        = string
  default     = "us-central1"
}

variable "api_invoker_members" {
  description = "IAM principals allowed to call the API, e.g. [\"serviceAccount:shop-backend@PROJECT.iam.gserviceaccount.com\"]."
  type        = list(string)
  default     = []
}
