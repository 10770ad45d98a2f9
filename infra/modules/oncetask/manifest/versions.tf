# No provider: the manifest is read and checked with Terraform's own functions (startswith/endswith need 1.5).
terraform {
  required_version = ">= 1.5"
}
