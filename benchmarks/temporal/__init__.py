"""Temporal exporter benchmark: 200 tenant namespaces on a real dev server."""
