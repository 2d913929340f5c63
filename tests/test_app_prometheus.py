"""The example service on a real socket, scraped by a real Prometheus: per-tenant p95 and error ratio."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from obsbundle.services import PrometheusServer, UvicornService

ROOT = Path(__file__).resolve().parent.parent

BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5, 10]

# tenant -> (slow latency injected, requests at that latency, fast requests, 5xx responses among the fast)
MIX = {
    "acme": (0.07, 10, 10, 0),
    "beta": (0.3, 10, 10, 3),
    "gamma": (1.1, 10, 10, 7),
}


def within_one_bucket(value: float) -> tuple[float, float]:
    """From the lower bound of `value`'s bucket to the upper bound of the next one: the quantile
    interpolates inside the bucket, and server overhead can only push a request upwards."""
    bounds = [0.0, *BUCKETS, math.inf]
    index = next(i for i in range(1, len(bounds)) if value <= bounds[i])
    return bounds[index - 1], bounds[min(index + 1, len(bounds) - 1)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornService]:
    config = tmp_path_factory.mktemp("agent-api") / "obsbundle.yaml"
    config.write_text(yaml.safe_dump({"app": {"latency_buckets_seconds": BUCKETS}}))
    server = UvicornService("examples.agent_api:app", env={"OBSBUNDLE_CONFIG": str(config)}, cwd=ROOT)
    yield server
    server.close()


@pytest.fixture(scope="module")
def prometheus(service: UvicornService) -> Iterator[PrometheusServer]:
    prom = PrometheusServer(targets={"agent-api": [service.address]})
    yield prom
    prom.close()


async def _tenant_load(client: httpx.AsyncClient, tenant: str) -> list[int]:
    """Fast requests one by one, then the slow ones in small concurrent batches: few requests wake
    at the same instant, so event-loop queueing stays far below a bucket width."""
    slow, n_slow, n_fast, n_err = MIX[tenant]
    headers = {"X-Tenant-ID": tenant}
    statuses = []
    for i in range(n_fast):
        statuses.append((await client.get(f"/v1/echo?status={500 if i < n_err else 200}", headers=headers)).status_code)
    for start in range(0, n_slow, 5):
        batch = [client.get(f"/v1/echo?sleep={slow}", headers=headers) for _ in range(min(5, n_slow - start))]
        statuses += [r.status_code for r in await asyncio.gather(*batch)]
    return statuses


async def _drive(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        results = await asyncio.gather(*(_tenant_load(client, tenant) for tenant in MIX))
    for tenant, statuses in zip(MIX, results, strict=True):
        assert sum(s >= 500 for s in statuses) == MIX[tenant][3]


def test_per_tenant_p95_and_error_ratio_through_prometheus(service: UvicornService, prometheus: PrometheusServer):
    # Warm-up: one fast success per tenant, scraped before the load, so rate() sees the load as an increase.
    for tenant in MIX:
        assert httpx.get(f"{service.url}/v1/echo", headers={"X-Tenant-ID": tenant}).status_code == 200
    prometheus.wait_query(
        'sum by (tenant_id) (http_server_requests_total{job="agent-api"})', lambda r: len(r) == len(MIX), timeout=60
    )

    asyncio.run(_drive(service.url))
    expected_total = {t: 1 + m[1] + m[2] for t, m in MIX.items()}
    prometheus.wait_query(
        "sum by (tenant_id) (http_server_requests_total)",
        lambda r: {x["metric"]["tenant_id"]: float(x["value"][1]) for x in r} == expected_total,
        timeout=60,
    )

    p95 = prometheus.query_by(
        "histogram_quantile(0.95, sum by (tenant_id, le) (rate(http_server_request_duration_seconds_bucket[1m])))"
    )
    assert set(p95) == set(MIX)
    for tenant, (slow, *_rest) in MIX.items():
        lower, upper = within_one_bucket(slow)
        assert lower <= p95[tenant] <= upper, (tenant, p95[tenant], (lower, upper))

    # Error ratio, exact, from the raw counters (errors_total and the 5xx status class agree).
    errors = prometheus.query_by("sum by (tenant_id) (http_server_errors_total)")
    by_class = prometheus.query_by('sum by (tenant_id) (http_server_requests_total{status_class="5xx"})')
    ratio = prometheus.query_by(  # `or ... * 0` keeps tenants without any 5xx at ratio 0
        'sum by (tenant_id) (http_server_requests_total{status_class="5xx"} or http_server_requests_total * 0)'
        " / sum by (tenant_id) (http_server_requests_total)"
    )
    for tenant, (_slow, _n_slow, _n_fast, n_err) in MIX.items():
        assert errors.get(tenant, 0.0) == n_err
        assert by_class.get(tenant, 0.0) == n_err
        assert ratio[tenant] == pytest.approx(n_err / expected_total[tenant], abs=1e-12)

    # Request counts per route and the in-flight gauge back at zero.
    per_route = prometheus.query_by('sum by (route) (http_server_requests_total{route="/v1/echo"})', "route")
    assert per_route == {"/v1/echo": sum(expected_total.values())}
    active = prometheus.query_by("sum by (tenant_id) (http_server_active_requests)")
    assert active == dict.fromkeys(MIX, 0.0)
    # Only catalogued names: no target_info, no otel_scope_* labels.
    assert prometheus.query("target_info") == []
    series = prometheus.query('{job="agent-api", __name__=~"http_.*"}')
    assert series and not any(k.startswith("otel_scope") for s in series for k in s["metric"])
