"""Runnable exporter processes: HTTP endpoint, scheduling and caching, CLI wiring.

Each exporter kind is a module `exporters.<kind>` exposing
`build(config: Mapping | Settings) -> tuple[list[Collector], dict[str, TenantResolver]]`, which calls
the source's own `collectors.<kind>.build_collectors(settings, catalog)`.
"""

KINDS = ("postgres", "redis", "temporal", "probes")
