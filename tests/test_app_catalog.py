"""The app and probe catalogs: conventions, exact exposed names, and the docs table."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from collectors.app import instrument, tenant_context
from obsbundle.catalog import static_catalog
from obsbundle.errors import ConfigError
from obsbundle.services import free_port, parse_metrics

DOCS = Path(__file__).resolve().parents[1] / "docs" / "app.md"


def test_catalogued_app_and_probe_metrics_follow_conventions_and_are_documented():
    catalog = static_catalog()
    ours = catalog.by_source("app") + catalog.by_source("probes")
    assert len(ours) == 16
    docs = DOCS.read_text()
    for metric in ours:
        assert metric.problems() == []
        assert f"| `{metric.name}` |" in docs, metric.name
    self_metrics = {"otel_tenant_overflow_total", "otel_export_dropped_total"}
    assert all("tenant_id" in m.labels for m in ours if m.name not in self_metrics)


def test_exposed_names_and_labels_are_exactly_the_catalogued_ones():
    """Every family the OTel -> Prometheus conversion produces is catalogued with the same labels."""
    otel = instrument(service_name="names", max_tenants_per_instrument=1)
    try:
        metrics = otel.metrics
        for tenant in ("a", "b"):  # b overflows, so otel_tenant_overflow_total appears too
            capped = metrics.request_started(tenant)
            metrics.request_finished(capped, "/x", "GET", 503, 0.1)
            metrics.inference(tenant, "m", 0.2, 3, 4)
            metrics.cache(tenant, "c", True)
            metrics.cache(tenant, "c", False)
        with tenant_context("a"):
            otel.cache_hit("c")
        samples = parse_metrics(otel.metrics_text())
    finally:
        otel.shutdown()
    catalog = static_catalog()
    families = set()
    for sample_name, series in samples.items():
        metric = catalog.series(sample_name)
        assert metric is not None and metric.source == "app", sample_name
        families.add(metric.name)
        for labels in series:
            names = {k for k, _ in labels} - {"le"}
            assert names == set(metric.labels), (sample_name, names)
    # otel_export_dropped_total exists only with OTLP on (tests/test_otlp.py)
    assert families == {m.name for m in catalog.by_source("app")} - {"otel_export_dropped_total"}
    buckets = {dict(k)["le"] for k in samples["http_server_request_duration_seconds_bucket"]}
    assert {"1.5", "2", "2.5", "+Inf"} <= buckets


def test_prometheus_listen_address_serves_metrics_and_a_busy_port_is_a_config_error():
    port = free_port()
    otel = instrument(service_name="pull", prometheus_listen_address=f"127.0.0.1:{port}")
    try:
        with tenant_context("acme"):
            otel.cache_miss("sessions")
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert 'cache_misses_total{cache="sessions",tenant_id="acme"} 1.0' in body
        with pytest.raises(ConfigError, match=rf"^app\.prometheus_listen_address 127\.0\.0\.1:{port}: cannot listen"):
            instrument(service_name="clash", prometheus_listen_address=f"127.0.0.1:{port}")
    finally:
        otel.shutdown()
