# Written and checked against (infra/README.md, "What was verified offline"):
#   Terraform 1.11.4 (`terraform fmt`); hashicorp/google v5.40.0 and v6.50.0 (every argument path set and every
#   attribute read here, against the provider's schema source at both tags: infra/tools/check_provider_arguments.py);
#   hashicorp/archive v2.5.0 (glob patterns in `excludes`, zip entries without timestamps); hashicorp/time
#   v0.9.0 (`time_sleep.create_duration`).
# A module declares what it needs and leaves the provider configuration (project, credentials) to its root.
terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 5.40 is the oldest release checked. Every argument used also exists at v7.0.0, but 7.x's behaviour
      # changes (its upgrade guide) are not reviewed: widen this after one real apply with 7.x.
      version = ">= 5.40, < 7.0"
    }
    archive = {
      source = "hashicorp/archive"
      # 2.5.0 added glob patterns to `excludes`: before it "**/__pycache__" matched nothing, so byte code was
      # zipped and every build changed the archive's hash and redeployed all three functions.
      version = ">= 2.5"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9"
    }
  }
}
