"""The HTTP edge: webhook handlers, health and metrics endpoints, error responses."""
