"""A Cloud Tasks emulator: google.cloud.tasks.v2 over gRPC, HTTP dispatch with retries, rate limits and OIDC."""
