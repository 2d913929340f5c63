"""Benchmark: `obsbundle exporter redis` against Debian's prometheus-redis-exporter key groups."""
