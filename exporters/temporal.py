"""`obsbundle exporter temporal`: one background-refresh collector per configured Temporal server,
plus a background relabel collector for servers with `metrics_url`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.runtime import Collector
from collectors.temporal import build_collectors
from obsbundle.catalog import catalog_for
from obsbundle.settings import Settings, settings
from obsbundle.tenancy import TenantResolver


def build(config: Mapping[str, Any] | Settings) -> tuple[list[Collector], dict[str, TenantResolver]]:
    """Collectors and per-server resolvers; ConfigError (exit 2) for an unusable source."""
    typed = settings(config)
    return build_collectors(typed, catalog_for(typed.document))
