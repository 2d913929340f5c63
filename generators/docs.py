"""Generated reference docs: the metric catalog as Markdown (docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from obsbundle.catalog import static_catalog
from obsbundle.catalog.markdown import catalog_document


def render(config: Mapping[str, Any]) -> dict[str, str]:
    # The static catalog only: custom queries are the user's own and belong to their deployment.
    return {"docs/metrics.md": catalog_document(static_catalog())}


def lint(config: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    return []
