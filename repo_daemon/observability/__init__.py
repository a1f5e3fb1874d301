"""Prometheus's view of the bridge: ``GET /metrics`` (docs/prometheus.md)."""
