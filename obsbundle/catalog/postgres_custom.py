"""Metrics that PostgreSQL custom queries in the config declare (they join the catalog)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from obsbundle.catalog import Metric

CUSTOM_PREFIX = "pg_custom_"


def custom_metric_name(query_name: str, metric_name: str, metric_type: str) -> str:
    name = f"{CUSTOM_PREFIX}{query_name}_{metric_name}".replace("-", "_")
    if metric_type == "counter" and not name.endswith("_total"):
        name += "_total"
    return name


def custom_query_metrics(config: Mapping[str, Any]) -> Iterator[Metric]:
    seen: set[str] = set()
    for source in config.get("sources", {}).get("postgres", []):
        for query in source.get("custom_queries", []):
            for column in query["metrics"]:
                metric_type = column.get("type", "gauge")
                name = custom_metric_name(query["name"], column["name"], metric_type)
                if name in seen:
                    continue
                seen.add(name)
                yield Metric(
                    name=name,
                    type=metric_type,
                    help=column["help"],
                    labels=("server", "tenant_id"),
                    source="postgres",
                    unit=column.get("unit", ""),
                )
