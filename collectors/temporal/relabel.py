"""Relabel mode: re-expose chosen families of the Temporal server's own /metrics with tenant_id.

The server labels its metrics with `namespace` and `taskqueue` but knows nothing of tenants, and
its Prometheus reporter rewrites those label values (`tenant-a` becomes `tenant_a`). The names the
background refresh saw (ListNamespaces, task queues of open workflows) map them back before the
tenancy rules apply; an unknown sanitized value is used as-is.

Lines are filtered by name prefix before any label parsing, and only a handful of families are
parsed at all.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator

import httpx

from collectors.metricset import MetricSet
from collectors.runtime import BackgroundRefresh, CollectorError
from collectors.temporal.collector import TemporalCollector
from obsbundle.catalog import Catalog
from obsbundle.tenancy import SHARED

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_SANITIZE = re.compile(r"[^a-zA-Z0-9_]")
OUTCOMES = {
    "workflow_success": "completed",
    "workflow_failed": "failed",
    "workflow_timeout": "timed_out",
    "workflow_terminate": "terminated",
    "workflow_cancel": "canceled",
    "workflow_continued_as_new": "continued_as_new",
}
SERVICE = ("service_requests", "service_error_with_type", "service_latency")
QUEUE = ("approximate_backlog_count", "approximate_backlog_age_seconds", "task_schedule_to_start_latency")
_HISTOGRAMS = {"service_latency", "task_schedule_to_start_latency"}
_PREFIXES = tuple(
    f"{name}{suffix}{{"
    for name in (*SERVICE, *QUEUE, *OUTCOMES)
    for suffix in (("_bucket", "_sum", "_count") if name in _HISTOGRAMS else ("",))
)
# Latency buckets kept when re-exposing (a subset of the server's 20; cumulative counts stay exact
# at these bounds). Long polls are left out of the latency histogram: their latency is the poll
# timeout, not service time. Together these cut the relabelled page ~3x.
KEEP_BUCKETS = frozenset({0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, math.inf})
LONG_POLLS = ("Poll", "GetWorkflowExecutionHistory")
FAMILIES = (
    "temporal_server_service_requests_total",
    "temporal_server_service_errors_total",
    "temporal_server_service_latency_seconds",
    "temporal_server_approximate_backlog_count",
    "temporal_server_approximate_backlog_age_seconds",
    "temporal_server_task_schedule_to_start_latency_seconds",
    "temporal_server_workflow_outcomes_total",
)


def sanitize(value: str) -> str:
    """Temporal's Prometheus reporter's rewrite of a label value."""
    return _SANITIZE.sub("_", value)


def parse_lines(text: str | Iterable[str]) -> Iterator[tuple[str, dict[str, str], float]]:
    """(sample name, labels, value) for the wanted samples only."""
    for line in text.splitlines() if isinstance(text, str) else text:
        if not line.startswith(_PREFIXES):
            continue
        brace = line.index("{")
        close = line.rindex("}")
        try:
            value = float(line[close + 1:].split()[0])
        except (ValueError, IndexError):
            continue
        yield line[:brace], dict(_LABEL.findall(line[brace + 1:close])), value


class _Histogram:
    def __init__(self) -> None:
        self.buckets: dict[float, float] = defaultdict(float)
        self.sum = 0.0


class ServerMetricsRelabel(BackgroundRefresh):
    """Pulls the server's /metrics in the background and serves the relabelled families.

    A background pull rather than one per scrape: the dev server's page is ~1 MB with a few
    namespaces and ~110 MB with 200 (per-namespace histograms), far too slow for a scrape path.
    The body is streamed line by line, so memory stays flat whatever its size.
    """

    def __init__(
        self, url: str, refresh: TemporalCollector, catalog: Catalog, interval: float, timeout: float = 30.0
    ) -> None:
        self.url = url
        self.refresh = refresh
        self._client = httpx.Client(timeout=timeout, trust_env=False)
        super().__init__("temporal_server_metrics", refresh.server, self._pull, catalog, interval,
                         up_metric="temporal_server_metrics_up")

    def close(self, join_timeout: float = 0.0) -> None:
        super().close(join_timeout)
        self._client.close()

    def _maps(self) -> tuple[dict[str, str], dict[str, str]]:
        refresher = self.refresh.refresher
        namespaces = {sanitize(n): n for n in (*refresher.namespaces, *refresher.settings.namespaces)}
        queues = {sanitize(q): q for q in (*refresher.task_queues, *refresher.settings.task_queues)}
        return namespaces, queues

    def _pull(self, out: MetricSet) -> None:
        if not self.refresh.refresher.namespaces:
            raise CollectorError("not_ready")  # no names to map sanitized labels back to yet
        try:
            with self._client.stream("GET", self.url) as response:
                if response.status_code != 200:
                    raise CollectorError(f"http_{response.status_code}")
                self.relabel(response.iter_lines(), out)
        except httpx.TimeoutException:
            raise CollectorError("timeout") from None
        except httpx.HTTPError:
            raise CollectorError("connection_failed") from None

    def relabel(self, text: str | Iterable[str], out: MetricSet) -> None:
        """Fold the server's samples into the catalogued temporal_server_* families."""
        namespaces, queues = self._maps()
        refresher = self.refresh.refresher
        histograms: dict[tuple[str, tuple[tuple[str, str], ...]], _Histogram] = defaultdict(_Histogram)
        ages: dict[tuple[tuple[str, str], ...], float] = {}
        out.declare_empty(FAMILIES)
        for sample, labels, value in parse_lines(text):
            raw_ns = labels.get("namespace", "")
            ns = namespaces.get(raw_ns, raw_ns)
            raw_queue = labels.get("taskqueue")
            queue = queues.get(raw_queue, raw_queue) if raw_queue is not None else None
            if raw_ns in ("", "_unknown_"):
                tenant = SHARED
            elif queue is not None and refresher.settings.mode != "namespace":
                tenant = refresher.queue_tenant(ns, queue)
            elif refresher.settings.mode == "namespace":
                tenant = refresher.namespace_tenant(ns)
            else:
                tenant = SHARED
            base = {"tenant_id": tenant, "namespace": ns}
            family = sample
            for suffix in ("_bucket", "_sum", "_count"):
                if sample.endswith(suffix) and sample.removesuffix(suffix) in _HISTOGRAMS:
                    family = sample.removesuffix(suffix)
            if family in OUTCOMES:
                out.add("temporal_server_workflow_outcomes_total", value, {**base, "outcome": OUTCOMES[family]})
                continue
            if family in SERVICE:
                if labels.get("service_name") != "frontend":
                    continue
                base["operation"] = labels.get("operation", "")
                if family == "service_requests":
                    out.add("temporal_server_service_requests_total", value, base)
                    continue
                if family == "service_error_with_type":
                    out.add("temporal_server_service_errors_total", value,
                            {**base, "error_type": labels.get("error_type", "")})
                    continue
                if base["operation"].startswith(LONG_POLLS):
                    continue
                target = "temporal_server_service_latency_seconds"
            else:
                base["task_queue"] = queue or ""
                base["task_queue_type"] = labels.get("task_type", "").lower()
                if family == "approximate_backlog_count":
                    out.add("temporal_server_approximate_backlog_count", value, base)
                    continue
                if family == "approximate_backlog_age_seconds":
                    key = tuple(sorted(base.items()))
                    ages[key] = max(ages.get(key, 0.0), value)
                    continue
                target = "temporal_server_task_schedule_to_start_latency_seconds"
            hist = histograms[(target, tuple(sorted(base.items())))]
            if sample.endswith("_bucket"):
                le = labels.get("le", "+Inf")
                bound = math.inf if le == "+Inf" else float(le)
                if bound in KEEP_BUCKETS:
                    hist.buckets[bound] += value
            elif sample.endswith("_sum"):
                hist.sum += value
        for key, age in ages.items():
            out.set("temporal_server_approximate_backlog_age_seconds", age, dict(key))
        for (target, key), hist in histograms.items():
            if math.inf in hist.buckets:
                out.add_histogram(target, sorted(hist.buckets.items()), hist.sum, dict(key))
