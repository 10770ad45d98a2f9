# Written and checked against Terraform 1.11 and hashicorp/google v5.40.0 and v6.50.0 (infra/README.md, "What
# was verified offline"); the module states its own constraints, a root pins what it deploys with.
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

  # State lives in a GCS bucket made once by hand (infra/README.md, "Bootstrap"); its name is never committed:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="prefix=oncetask"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region
}
