"""`obsbundle exporter redis`: a server collector and a keyspace scanner per `sources.redis` entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.redis import build_collectors
from collectors.runtime import Collector
from obsbundle.catalog import static_catalog
from obsbundle.settings import Settings, settings
from obsbundle.tenancy import TenantResolver


def build(config: Mapping[str, Any] | Settings) -> tuple[list[Collector], dict[str, TenantResolver]]:
    """Collectors and per-server resolvers; ConfigError (exit 2) for an unusable source."""
    return build_collectors(settings(config), static_catalog())
