"""The Temporal collector: a background refresh on its own asyncio loop, served from memory.

temporalio is asyncio-only, while the exporter runtime is threaded; the refresh thread owns one
event loop (and so one client connection) for its whole life. Scrapes never touch Temporal: they
read the last complete refresh plus live counters of the API calls made.
"""

from __future__ import annotations

import asyncio
from typing import Any

from collectors.metricset import MetricSet
from collectors.runtime import BackgroundRefresh
from collectors.temporal.api import Api
from collectors.temporal.refresh import Refresher, Settings
from obsbundle.catalog import Catalog
from obsbundle.tenancy import SHARED, TenantResolver

# Per-tenant families always exposed (HELP/TYPE), even before any tenant has data.
TENANT_FAMILIES = (
    "temporal_tenant_workflows_running",
    "temporal_tenant_workflows_closed",
    "temporal_tenant_task_queue_backlog",
    "temporal_tenant_task_queue_backlog_age_seconds",
    "temporal_tenant_task_queue_pollers",
    "temporal_tenant_task_queue_add_rate_per_second",
    "temporal_tenant_task_queue_dispatch_rate_per_second",
)


class TemporalCollector(BackgroundRefresh):
    """Refreshes one Temporal server's per-tenant figures every `interval` seconds."""

    def __init__(
        self,
        settings: Settings,
        api: Api,
        resolver: TenantResolver,
        catalog: Catalog,
        interval: float,
    ) -> None:
        self.api = api
        self.refresher = Refresher(settings, resolver, api)
        self._event_loop: asyncio.AbstractEventLoop | None = None
        super().__init__("temporal", settings.server, self._refresh_sync, catalog, interval, up_metric="temporal_up")

    def _refresh_sync(self, out: MetricSet) -> None:
        if self._event_loop is None:
            self._event_loop = asyncio.new_event_loop()
        self._event_loop.run_until_complete(self.refresher.run(out))

    def run_async(self, coro: Any) -> Any:
        """Run a coroutine on the refresh loop (benchmarks and tests that call refresh_once)."""
        if self._event_loop is None:
            self._event_loop = asyncio.new_event_loop()
        return self._event_loop.run_until_complete(coro)

    def collect(self, out: MetricSet, deadline: float) -> None:
        try:
            super().collect(out, deadline)
        finally:
            # Also after a failed refresh: the runner then serves the last good figures with
            # temporal_up 0, and their age must keep growing where dashboards can see it.
            self._live(out)

    def _live(self, out: MetricSet) -> None:
        shared = {"tenant_id": SHARED}
        out.declare_empty(TENANT_FAMILIES)
        if self.refreshes:
            out.set("temporal_refresh_age_seconds", self.data_age(), shared)
        out.set("temporal_rate_limit_wait_seconds_total", self.api.waited, shared)
        for method, count in dict(self.api.calls).items():
            out.set("temporal_api_calls_total", count, {**shared, "method": method})
        out.declare_empty(["temporal_api_errors_total"])
        for (method, code), count in dict(self.api.errors).items():
            out.set("temporal_api_errors_total", count, {**shared, "method": method, "code": code})
