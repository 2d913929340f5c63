"""`obsbundle exporter postgres`: the collectors of every `sources.postgres` entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.postgres import build_collectors
from collectors.runtime import Collector
from obsbundle.catalog import catalog_for
from obsbundle.settings import Settings, settings
from obsbundle.tenancy import TenantResolver


def build(config: Mapping[str, Any] | Settings) -> tuple[list[Collector], dict[str, TenantResolver]]:
    """Collectors and per-server tenant resolvers; ConfigError (exit 2) for an unusable source."""
    typed = settings(config)
    return build_collectors(typed, catalog_for(typed.document))
