"""The single metric catalog: every metric any exporter or collector emits is declared here once.

Collectors may only emit catalogued metrics (MetricSet refuses anything else), and generators may
only query catalogued metrics (their lint refuses anything else), so a dashboard or alert can
never reference a metric no exporter emits. Each source declares its metrics in its own module
(`obsbundle/catalog/<source>.py`), calling `declare(...)` at import time.
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

    @property
    def per_tenant(self) -> bool:
        return "tenant_id" in self.labels

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
) -> Metric:
    """Add a metric to the static catalog (called at import time by the source modules)."""
    metric = Metric(name, type, help, tuple(labels), source, unit, external, tuple(buckets))
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
