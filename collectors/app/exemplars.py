"""trace_id exemplars on the request-duration histogram, for Prometheus' OpenMetrics scrape.

OpenTelemetry's Prometheus exporter drops the SDK's exemplars when it converts to
prometheus_client families, so the middleware keeps the latest sampled request per
(label set, bucket) here and `ExemplarCollector` re-attaches them to the `_bucket` samples of
the converted family. prometheus_client writes exemplars only in the OpenMetrics format
(`Accept: application/openmetrics-text`), which Prometheus asks for by default. The store is
bounded by the histogram's own (tenant-capped) series times its buckets.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from opentelemetry import trace
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Exemplar, Sample

LabelKey = tuple[tuple[str, str], ...]


class ExemplarStore:
    """The most recent traced observation per (labels, bucket) of one histogram."""

    def __init__(self, metric: str, buckets: Sequence[float]) -> None:
        self.metric = metric
        self.bounds = sorted(float(b) for b in buckets)
        self._lock = threading.Lock()
        self._latest: dict[tuple[LabelKey, int], Exemplar] = {}

    def observe(self, labels: Mapping[str, str], value: float, span: trace.Span | None = None) -> None:
        ctx = (span or trace.get_current_span()).get_span_context()
        if not ctx.is_valid or not ctx.trace_flags.sampled:
            return
        bucket = bisect.bisect_left(self.bounds, value)  # first bound >= value, len(bounds) = +Inf
        exemplar = Exemplar(
            {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}, value, time.time()
        )
        with self._lock:
            self._latest[(tuple(sorted(labels.items())), bucket)] = exemplar

    def exemplar(self, labels: LabelKey, le: str) -> Exemplar | None:
        bound = math.inf if le == "+Inf" else float(le)
        bucket = len(self.bounds) if bound == math.inf else bisect.bisect_left(self.bounds, bound)
        with self._lock:
            return self._latest.get((labels, bucket))


class ExemplarCollector(Collector):
    """Everything `source` collects, with the store's exemplars on its histogram's buckets."""

    def __init__(self, source: CollectorRegistry, store: ExemplarStore) -> None:
        self.source = source
        self.store = store
        self._bucket = f"{store.metric}_bucket"

    def collect(self) -> Iterator:
        for family in self.source.collect():
            if family.name == self.store.metric and family.type == "histogram":
                family.samples = [self._with_exemplar(s) for s in family.samples]
            yield family

    def _with_exemplar(self, sample: Sample) -> Sample:
        if sample.name != self._bucket or "le" not in sample.labels:
            return sample
        labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        exemplar = self.store.exemplar(labels, sample.labels["le"])
        return sample._replace(exemplar=exemplar) if exemplar is not None else sample
