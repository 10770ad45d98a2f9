# Checked against Terraform 1.11 and hashicorp/google v5.40.0 and v6.50.0.
terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.40, < 7.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.5"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9"
    }
  }

  # Keep state in a bucket of your own:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="prefix=catalog"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}
