"""SELECT lists built from the catalog, and rows read back by column name.

A metric of a query group declares its SQL expression in `obsbundle/catalog/postgres.py`; the
column is aliased to the metric's own name, so a value can only ever reach the metric it was
written for (adding a column in the wrong place cannot shift the others).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from obsbundle.catalog import Metric


def select_list(metrics: Iterable[Metric], **placeholders: str) -> str:
    """`(<sql>)::float8 AS <metric name>` for each metric, `{placeholders}` filled in."""
    return ",\n       ".join(f"({m.sql.format(**placeholders)})::float8 AS {m.name}" for m in metrics)


def fold(metrics: Iterable[Metric], rows: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[tuple[str, str], float]:
    """(metric, tenant) -> value over rows of (tenant, row by column name), by each metric's `combine`.

    `sum` adds a tenant's rows; `max` keeps the largest non-negative one (an age across schemas).
    None (no data, e.g. never vacuumed) is skipped, so a tenant with none has no series.
    """
    metrics = tuple(metrics)
    values: dict[tuple[str, str], float] = {}
    for tenant, row in rows:
        for metric in metrics:
            value = row[metric.name]
            if value is None:
                continue
            key = (metric.name, tenant)
            if metric.combine == "max":
                values[key] = max(values.get(key, 0.0), max(0.0, float(value)))
            else:
                values[key] = values.get(key, 0.0) + float(value)
    return values
