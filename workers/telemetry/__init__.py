"""OpenTelemetry for the supervisor and the workers; it imports no other package of ours."""
