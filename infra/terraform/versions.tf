terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.40, < 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4"
    }
  }

  # State lives in a GCS bucket made once by hand (infra/README.md, "Bootstrap"); its name is never committed:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="prefix=oncetask"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}
