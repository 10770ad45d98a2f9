"""Stands for the vendored oncetask runtime of a real bundle; the Terraform tests only check that it is there."""
