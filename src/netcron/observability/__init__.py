"""Operability: Prometheus metrics and webhook notifications."""
