"""The scrape runner: deadline, per-collector budget, single-flight, busy, up gauge, self-metrics.

The collectors here are small in-process ones driving the runner's own logic; the exporters' tests
exercise the same runner against real servers.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from collectors.metricset import MetricSet, UncataloguedMetric
from collectors.runtime import BackgroundRefresh, Collector, CollectorError
from exporters.http import ExporterServer
from exporters.runtime import ScrapeRunner
from obsbundle.catalog import Catalog, Metric, static_catalog
from obsbundle.services import parse_metrics

CATALOG = static_catalog().extended([
    Metric("test_up", "gauge", "Test source up.", ("server", "tenant_id"), "test"),
    Metric("test_rows", "gauge", "Rows per tenant.", ("server", "tenant_id"), "test"),
])


class Sleepy(Collector):
    up_metric = "test_up"

    def __init__(self, name: str, delay: float, rows: dict[str, float] | None = None,
                 fail: Exception | None = None, budget: float | None = None) -> None:
        self.name, self.server, self.delay, self.rows, self.fail = name, "s1", delay, rows or {}, fail
        self.calls = 0
        if budget is not None:
            self.budget = budget

    def collect(self, out: MetricSet, deadline: float) -> None:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail:
            raise self.fail
        for tenant, value in self.rows.items():
            out.add("test_rows", value, {"tenant_id": tenant})


def sample(families: list, name: str, **labels: str) -> float | None:
    for family in families:
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_values_and_self_metrics() -> None:
    runner = ScrapeRunner("test", [Sleepy("rows", 0, {"acme": 3, "globex": 5})], CATALOG, timeout=2)
    families = runner.scrape()
    assert sample(families, "test_rows", tenant_id="acme", server="s1") == 3
    assert sample(families, "test_rows", tenant_id="globex") == 5
    assert sample(families, "test_up", tenant_id="_shared") == 1
    assert sample(families, "obsbundle_collector_success", collector="rows") == 1
    assert sample(families, "obsbundle_collector_last_error_info", collector="rows", code="none") == 1


def test_overrunning_collector_times_out_inside_the_deadline_and_is_not_stacked() -> None:
    slow = Sleepy("slow", 1.5, {"acme": 1})
    fast = Sleepy("fast", 0, {"globex": 2})
    runner = ScrapeRunner("test", [slow, fast], CATALOG, timeout=0.5)
    t0 = time.monotonic()
    families = runner.scrape()
    assert time.monotonic() - t0 < 1.0
    assert sample(families, "test_up", tenant_id="_shared") == 0
    assert sample(families, "test_rows", tenant_id="globex") == 2  # the healthy collector still reports
    assert sample(families, "test_rows", tenant_id="acme") is None
    assert sample(families, "obsbundle_collector_last_error_info", collector="slow", code="timeout") == 1
    families = runner.scrape()  # slow is still running: reported busy, not started again
    assert slow.calls == 1
    assert sample(families, "obsbundle_collector_last_error_info", collector="slow", code="busy") == 1
    assert sample(families, "obsbundle_collector_errors_total", collector="slow", code="timeout") == 1
    time.sleep(1.2)
    runner.scrape()
    assert slow.calls == 2
    runner.close()


def test_per_collector_budget_is_shorter_than_the_deadline() -> None:
    runner = ScrapeRunner("test", [Sleepy("slow", 1.0, budget=0.2)], CATALOG, timeout=5)
    t0 = time.monotonic()
    runner.scrape()
    assert time.monotonic() - t0 < 0.8


def test_failure_codes_are_short_and_recover() -> None:
    failing = Sleepy("db", 0, {"acme": 1}, fail=CollectorError("auth_failed", "password x rejected"))
    runner = ScrapeRunner("test", [failing], CATALOG, timeout=1)
    families = runner.scrape()
    assert sample(families, "obsbundle_collector_last_error_info", code="auth_failed") == 1
    assert sample(families, "test_up") == 0
    failing.fail = None
    families = runner.scrape()
    assert sample(families, "test_up") == 1
    assert sample(families, "obsbundle_collector_last_error_info", code="none") == 1
    assert sample(families, "obsbundle_collector_errors_total", code="auth_failed") == 1


def test_concurrent_scrapes_share_one_run() -> None:
    collector = Sleepy("rows", 0.3, {"acme": 1})
    runner = ScrapeRunner("test", [collector], CATALOG, timeout=2)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: runner.scrape(), range(8)))
    assert collector.calls == 1
    assert all(sample(r, "test_rows", tenant_id="acme") == 1 for r in results)


def test_metricset_refuses_uncatalogued_metrics_and_wrong_labels() -> None:
    out = MetricSet(CATALOG, {"server": "s1"})
    with pytest.raises(UncataloguedMetric):
        out.add("test_unknown", 1, {"tenant_id": "a"})
    with pytest.raises(ValueError, match="labels"):
        out.add("test_rows", 1, {"tenant": "a"})
    out.add("test_rows", 2, {"tenant_id": "a"})
    out.add("test_rows", 3, {"tenant_id": "a"})
    assert out.value("test_rows", server="s1", tenant_id="a") == 5  # per-table rows fold per tenant


def test_background_refresh_serves_last_good_data_and_reports_failure() -> None:
    state = {"value": 1.0, "fail": False}

    def refresh(out: MetricSet) -> None:
        if state["fail"]:
            raise CollectorError("connection_refused")
        out.add("test_rows", state["value"], {"tenant_id": "acme"})

    bg = BackgroundRefresh("bg", "s1", refresh, CATALOG, interval=60, up_metric="test_up")
    runner = ScrapeRunner("test", [bg], CATALOG, timeout=1)
    assert sample(runner.scrape(), "obsbundle_collector_last_error_info", code="not_ready") == 1
    bg.refresh_once()
    assert sample(runner.scrape(), "test_rows", tenant_id="acme") == 1
    state["fail"] = True
    with pytest.raises(CollectorError):
        bg.refresh_once()
    families = runner.scrape()
    assert sample(families, "test_rows", tenant_id="acme") == 1  # last good pass still served
    assert sample(families, "test_up") == 0


def test_http_endpoint_paths() -> None:
    runner = ScrapeRunner("test", [Sleepy("rows", 0, {"acme": 4})], CATALOG, timeout=1)
    server = ExporterServer(runner, "127.0.0.1:0", "/custom-metrics")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/-/healthy").text == "OK\n"
        assert httpx.get(f"{base}/metrics").status_code == 404
        body = httpx.get(f"{base}/custom-metrics").text
        samples = parse_metrics(body)
        assert samples["test_rows"][(("server", "s1"), ("tenant_id", "acme"))] == 4
        assert "# HELP test_rows Rows per tenant." in body
        assert "/custom-metrics" in httpx.get(base).text
        filtered = parse_metrics(httpx.get(f"{base}/custom-metrics?name[]=test_rows").text)
        assert set(filtered) == {"test_rows"}
    finally:
        server.shutdown()


def test_listen_address_in_use_is_a_one_line_error() -> None:
    from obsbundle.errors import ObsbundleError

    runner = ScrapeRunner("test", [], CATALOG)
    first = ExporterServer(runner, "127.0.0.1:0")
    try:
        with pytest.raises(ObsbundleError, match=r"127\.0\.0\.1:\d+: address already in use"):
            ExporterServer(runner, f"127.0.0.1:{first.port}")
    finally:
        first.socket.close()


def test_catalog_declares_each_name_once_and_follows_conventions() -> None:
    catalog: Catalog = static_catalog()
    problems = [p for name in catalog for p in catalog[name].problems()]
    assert problems == []
    for name in catalog:
        metric = catalog[name]
        if metric.source in ("postgres", "redis", "temporal") and not metric.external:
            assert {"server", "tenant_id"} <= set(metric.labels), name


def test_one_error_code_table_serves_every_source() -> None:
    import socket

    import psycopg
    import redis
    from temporalio.service import RPCError, RPCStatusCode

    import collectors.temporal.api  # noqa: F401  registers RPCError's status codes
    from collectors.runtime import error_code

    def chained(outer: Exception, inner: BaseException) -> Exception:
        outer.__cause__ = inner
        return outer

    assert error_code(CollectorError("tenants_table_failed")) == "tenants_table_failed"
    assert error_code(chained(RuntimeError("x"), ConnectionRefusedError(111, "refused"))) == "connection_refused"
    assert error_code(socket.gaierror(-2, "Name or service not known")) == "dns"
    assert error_code(TimeoutError()) == "timeout"
    assert error_code(ConnectionResetError(104, "reset")) == "network"
    failed = psycopg.OperationalError('connection failed: FATAL:  password authentication failed for user "m"')
    assert error_code(failed) == "auth_failed"
    assert error_code(psycopg.OperationalError('FATAL:  database "nope" does not exist')) == "no_such_role_or_database"
    assert error_code(psycopg.OperationalError("server closed the connection unexpectedly")) == "connection_failed"
    assert error_code(psycopg.errors.QueryCanceled("canceling statement due to statement timeout")) == "timeout"
    assert error_code(redis.AuthenticationError("invalid username-password pair")) == "auth_failed"
    assert error_code(RPCError("no", RPCStatusCode.RESOURCE_EXHAUSTED, b"")) == "resource_exhausted"
    assert error_code(ValueError("anything")) == "error"
