output "api_url" {
  description = "The catalog's job API."
  value       = module.oncetask.api_url
}

output "api_audience" {
  description = "The audience of callers' ID tokens (oncetask.Client uses it)."
  value       = module.oncetask.api_audience
}

output "worker_service_account" {
  description = "The identity the stages run as: grant it read on the buckets your jobs read from."
  value       = module.oncetask.service_accounts.worker
}

output "api_access" {
  description = "Who may call the API, as deployed (public invoker, anonymous submissions, Firebase project, operators, rules release)."
  value       = module.oncetask.api_access
}
