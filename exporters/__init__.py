"""Runnable exporter processes: HTTP endpoint, scheduling and caching, CLI wiring.

Each exporter kind is a module `exporters.<kind>` exposing
`build(config: dict) -> tuple[list[Collector], dict[str, TenantResolver]]`.
"""

KINDS = ("postgres", "redis", "temporal", "probes")
