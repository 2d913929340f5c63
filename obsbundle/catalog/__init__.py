"""The single metric catalog: every metric any exporter or collector emits is declared here once.

Collectors may only emit catalogued metrics (MetricSet refuses anything else), and generators may
only query catalogued metrics (their lint refuses anything else), so a dashboard or alert can
never reference a metric no exporter emits. Each source declares its metrics in its own module
(`obsbundle/catalog/<source>.py`), calling `declare(...)` at import time.

A declaration also carries the metric's behaviour, so adding one is one edit: where a collector
reads it (`query` plus its `sql` expression or reply `column`, always matched by name), how a
tenant's rows fold (`combine`), dashboard hints (`panel`) and the `thresholds` key its alert uses.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MetricType = Literal["gauge", "counter", "histogram", "info"]

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Third-party names (node_memory_MemAvailable_bytes) are not ours to choose: Prometheus's own grammar.
_EXTERNAL_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
UNIT_SUFFIXES = {"bytes": "_bytes", "seconds": "_seconds", "ratio": "_ratio", "days": "_days"}
Combine = Literal["sum", "max"]
# Grafana unit of a panel on a metric of each catalog unit (a hint's own `unit` wins).
GRAFANA_UNITS = {"bytes": "bytes", "seconds": "s", "ratio": "percentunit", "days": "d"}


@dataclass(frozen=True)
class PanelHint:
    """How a dashboard panel on this metric should look; every field is optional."""

    title: str = ""
    unit: str = ""  # a Grafana unit (`bytes`, `s`, `percentunit`, `short`)
    legend: str = "{{tenant_id}}"


@dataclass(frozen=True)
class Metric:
    """One metric family as exposed to Prometheus (counters include `_total`)."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    source: str
    unit: str = ""
    external: bool = False  # emitted by a third-party exporter (node_exporter, Temporal server)
    buckets: tuple[float, ...] = field(default=(), compare=False)
    # Behaviour: where the value comes from, matched by name, never by position.
    query: str = ""  # the collector query/reply that yields it (`pg_schema_stats`, `redis_info`)
    sql: str = ""  # its SQL expression in that query; the column is aliased to the metric name
    column: str = ""  # or the field name in the reply (an INFO field, a SHOW POOLS column)
    combine: Combine = "sum"  # how several rows of one tenant fold: summed, or the largest (ages)
    panel: PanelHint | None = None  # dashboard hints
    threshold: str = ""  # key into the config's `thresholds` that its alert and panel lines use

    @property
    def per_tenant(self) -> bool:
        return "tenant_id" in self.labels

    @property
    def grafana_unit(self) -> str:
        """The unit a dashboard panel on this metric uses (the hint's, else from `unit`)."""
        if self.panel and self.panel.unit:
            return self.panel.unit
        return GRAFANA_UNITS.get(self.unit, "short")

    @property
    def panel_title(self) -> str:
        if self.panel and self.panel.title:
            return self.panel.title
        return self.help.split(" (")[0].rstrip(".")

    @property
    def series_names(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this family."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)

    def problems(self) -> list[str]:
        """Convention violations (Prometheus naming best practice); empty when fine."""
        found = []
        if not (_EXTERNAL_NAME if self.external else _NAME).match(self.name):
            found.append("name is not snake_case")
        if not self.help.strip():
            found.append("HELP is empty")
        if self.type == "counter" and not self.name.endswith("_total"):
            found.append("counter name must end with _total")
        if self.type != "counter" and self.name.endswith("_total"):
            found.append("only counters end with _total")
        if self.type == "info" and not self.name.endswith("_info"):
            found.append("info metric name must end with _info")
        suffix = UNIT_SUFFIXES.get(self.unit)
        base = self.name.removesuffix("_total")
        if suffix and not base.endswith(suffix):
            found.append(f"unit {self.unit} needs suffix {suffix}")
        if len(set(self.labels)) != len(self.labels):
            found.append("duplicate label")
        if (self.sql or self.column) and not self.query:
            found.append("sql/column given without the query it belongs to")
        if self.sql and self.column:
            found.append("give sql or column, not both")
        return [f"{self.name}: {p}" for p in found]


class Catalog(Mapping[str, Metric]):
    """An immutable name -> Metric mapping; `series` also finds histogram `_bucket` names."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics: dict[str, Metric] = {}
        for metric in metrics:
            if metric.name in self._metrics and self._metrics[metric.name] != metric:
                raise ValueError(f"metric {metric.name} declared twice with different definitions")
            self._metrics[metric.name] = metric
        self._series = {s: m for m in self._metrics.values() for s in m.series_names}
        self._queries: dict[str, list[Metric]] = {}
        for name in sorted(self._metrics):
            metric = self._metrics[name]
            if metric.query:
                self._queries.setdefault(metric.query, []).append(metric)

    def __getitem__(self, name: str) -> Metric:
        return self._metrics[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._metrics))

    def __len__(self) -> int:
        return len(self._metrics)

    def series(self, sample_name: str) -> Metric | None:
        """The family a stored sample name belongs to (`x_bucket` -> histogram `x`)."""
        return self._series.get(sample_name)

    def by_source(self, source: str) -> list[Metric]:
        return [self._metrics[n] for n in self if self._metrics[n].source == source]

    def by_query(self, query: str) -> tuple[Metric, ...]:
        """The metrics one collector query yields, sorted by name (so generated SQL is stable)."""
        return tuple(self._queries.get(query, ()))

    def extended(self, metrics: Iterable[Metric]) -> Catalog:
        return Catalog([*self._metrics.values(), *metrics])


_DECLARED: list[Metric] = []


def declare(
    name: str,
    type: MetricType,
    help: str,
    labels: Iterable[str] = (),
    *,
    source: str,
    unit: str = "",
    external: bool = False,
    buckets: Iterable[float] = (),
    query: str = "",
    sql: str = "",
    column: str = "",
    combine: Combine = "sum",
    panel: PanelHint | None = None,
    threshold: str = "",
) -> Metric:
    """Add a metric to the static catalog (called at import time by the source modules).

    `query` + `sql` (or `column`) say where a collector reads it; `panel` and `threshold` are what
    dashboards and alerts need. See CONTRIBUTING.md, "Add a metric".
    """
    metric = Metric(name, type, help, tuple(labels), source, unit, external, tuple(buckets),
                    query, sql, column, combine, panel, threshold)
    _DECLARED.append(metric)
    return metric


def _load_modules() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def static_catalog() -> Catalog:
    """Every metric declared by the source modules."""
    _load_modules()
    return Catalog(_DECLARED)


def catalog_for(config: Mapping[str, Any] | None) -> Catalog:
    """The static catalog plus metrics the config defines (PostgreSQL custom queries)."""
    base = static_catalog()
    if not config:
        return base
    from obsbundle.catalog.postgres_custom import custom_query_metrics

    return base.extended(custom_query_metrics(config))
