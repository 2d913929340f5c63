"""Capacity: series per tenant per source, and what they cost one Prometheus, at 1,000 and 10,000
tenants. Feeds the table in docs/scaling.md.

1. Series per tenant, measured: each real exporter (PostgreSQL: one schema with two tables per
   tenant; Redis: keys and a named connection per tenant) and the example API (a 200, a 500 and
   an inference call per tenant) is scraped once at 1,000 tenants; every series whose tenant_id
   is a real tenant is counted. Temporal needs a namespace per tenant, which the dev server
   cannot create by the thousand here: its figure is counted from the catalog (families with a
   tenant_id, one series each, statuses that are always present, one workflow queue).
2. Prometheus cost: a loopback target serves the captured per-tenant series, copied for 1,000 and
   10,000 tenant ids (values vary per scrape), and a real Prometheus scrapes it every 15 s for
   BENCH_SCALING_SECONDS (default 120). Head series, RSS, and samples appended per second are
   read from Prometheus's own metrics.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from obsbundle.catalog import static_catalog
from obsbundle.services import (
    ExporterProcess,
    ExpositionServer,
    PostgresServer,
    PrometheusServer,
    RedisServer,
    UvicornService,
    parse_metrics,
    wait_for,
)

TENANTS = int(os.environ.get("BENCH_SCALING_TENANTS", "1000"))
SCALES = (1000, 10000)
SECONDS = int(os.environ.get("BENCH_SCALING_SECONDS", "120"))
_TENANT = re.compile(r'tenant_id="([^"]*)"')


def tenant_ids(n: int) -> list[str]:
    return [f"t{i:05d}" for i in range(n)]


def per_tenant_lines(text: str) -> dict[str, list[str]]:
    """tenant -> its sample lines (pseudo-tenants `_...` left out)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = _TENANT.search(line)
        if match and not match.group(1).startswith("_"):
            out.setdefault(match.group(1), []).append(line)
    return out


def summary(lines: dict[str, list[str]], expected: int) -> dict[str, Any]:
    counts = sorted(len(v) for v in lines.values())
    return {"tenants_seen": len(counts), "tenants_expected": expected,
            "min": counts[0], "max": counts[-1], "mean": round(sum(counts) / len(counts), 1)}


def scrape_until(exporter: ExporterProcess, n: int, timeout: float, deadline: float) -> str:
    """A scrape carrying all `n` tenants once the per-tenant series count has stopped growing:
    background collectors (schema sizes, keyspace passes) fill their families in over seconds."""
    last: list[int] = [-1]

    def scrape() -> str | None:
        text = exporter.scrape_text(timeout)
        lines = per_tenant_lines(text)
        count = sum(map(len, lines.values()))
        stable = len(lines) >= n and count == last[0]
        last[0] = count
        if not stable:
            time.sleep(3)
        return text if stable else None

    return wait_for(scrape, deadline, 1, what=f"{exporter.kind} exporter to show {n} tenants")


def measure_redis(n: int) -> tuple[dict[str, Any], list[str]]:
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        pipe = client.pipeline(transaction=False)
        for t in tenant_ids(n):
            for i in range(5):
                pipe.set(f"tenant:{t}:session:{i}", "v" * 32, ex=3600 if i % 2 else None)
        pipe.execute()
        held = [redis.Redis.from_url(server.url, client_name=f"tenant:{t}") for t in tenant_ids(n)[:50]]
        for h in held:
            h.ping()
        cfg = {"tenancy": {"max_tenants": 2 * n}, "exporter": {"scrape_timeout": "30s"},
               "sources": {"redis": [{"name": "cache", "url": server.url, "scan": {"interval": "1s"}}]}}
        with ExporterProcess("redis", cfg) as exporter:
            text = scrape_until(exporter, n, 30, 120)
        for h in held:
            h.close()
    lines = per_tenant_lines(text)
    return summary(lines, n), lines[tenant_ids(n)[-1]]


def measure_postgres(n: int) -> tuple[dict[str, Any], list[str]]:
    with PostgresServer() as pg:
        statements = []
        for t in tenant_ids(n):
            statements += [f"CREATE SCHEMA tenant_{t}", f"CREATE TABLE tenant_{t}.orders (id int PRIMARY KEY)",
                           f"CREATE TABLE tenant_{t}.items (id int PRIMARY KEY, note text)"]
        for i in range(0, len(statements), 600):
            pg.execute("; ".join(statements[i:i + 600]))
        cfg = {"tenancy": {"max_tenants": 2 * n}, "exporter": {"scrape_timeout": "60s"},
               "sources": {"postgres": [{"name": "main", "dsn": pg.dsn}]}}
        with ExporterProcess("postgres", cfg) as exporter:
            text = scrape_until(exporter, n, 120, 180)
    lines = per_tenant_lines(text)
    return summary(lines, n), lines[tenant_ids(n)[-1]]


def measure_app(n: int) -> tuple[dict[str, Any], list[str]]:
    workdir = Path(tempfile.mkdtemp(prefix="obsbundle-bench-app-"))
    (workdir / "obsbundle.yaml").write_text(yaml.safe_dump(
        {"tenancy": {"max_tenants": 2 * n}, "app": {"max_tenants_per_instrument": 2 * n}}))
    with UvicornService("examples.agent_api:app", env={"OBSBUNDLE_CONFIG": str(workdir / "obsbundle.yaml")},
                        cwd=Path(__file__).resolve().parents[2]) as api, httpx.Client(base_url=api.url,
                                                                                      timeout=30) as http:
        for t in tenant_ids(n):
            headers = {"X-Tenant-ID": t}
            http.get("/v1/echo", params={"status": 200}, headers=headers)
            http.get("/v1/echo", params={"status": 500}, headers=headers)
            http.get(f"/v1/tenants/{t}/infer", params={"tokens": 10, "cache": "miss"}, headers=headers)
        text = http.get("/metrics").text
    lines = per_tenant_lines(text)
    return summary(lines, n), lines[tenant_ids(n)[-1]]


def temporal_from_catalog() -> dict[str, Any]:
    from obsbundle.catalog.temporal import ALWAYS_STATUSES

    families = [m for m in static_catalog().by_source("temporal") if m.per_tenant and m.name.startswith(
        "temporal_tenant_")]
    count = 0
    for m in families:
        if "status" in m.labels:
            count += len(ALWAYS_STATUSES)
        else:
            count += 1
    return {"tenants_seen": None, "tenants_expected": None, "min": count, "max": count, "mean": float(count),
            "counted_from": f"catalog: {len(families)} per-tenant families, one workflow queue"}


class Target:
    """Serves the template lines for `tenants` ids. The two bodies are rendered once and alternate,
    so every scrape changes every value (as real gauges do) at no cost to the benchmark process."""

    def __init__(self, template: list[str], tenants: list[str]) -> None:
        names = [_TENANT.sub(f'tenant_id="{t}"', line.rsplit(" ", 1)[0]) for t in tenants for line in template]
        self.series = len(names)
        self.bodies = [("\n".join(f"{n} {v}" for n in names) + "\n").encode() for v in (1, 2)]
        self.scrapes = 0
        self.server = ExpositionServer(self._body)

    def _body(self) -> bytes:
        self.scrapes += 1
        return self.bodies[self.scrapes % 2]

    @property
    def address(self) -> str:
        return self.server.address

    def close(self) -> None:
        self.server.close()


def own_metrics(prom: PrometheusServer) -> dict[str, float]:
    """Prometheus's own /metrics (it does not scrape itself here): name -> summed value."""
    samples = parse_metrics(httpx.get(f"{prom.url}/metrics", timeout=30).text)
    return {name: sum(series.values()) for name, series in samples.items()}


def prometheus_cost(template: list[str], tenants: int) -> dict[str, Any]:
    ids = tenant_ids(tenants)
    # one target per 1,000 tenants, as one exporter per server would be
    targets = [Target(template, ids[i:i + 1000]) for i in range(0, tenants, 1000)]
    series = sum(t.series for t in targets)
    try:
        with PrometheusServer({"synthetic": [t.address for t in targets]}, scrape_interval="15s",
                              evaluation_interval="15s") as prom:
            wait_for(lambda: own_metrics(prom)["prometheus_tsdb_head_series"] >= series, 300, 2,
                     what="head series loaded")
            first, t0 = own_metrics(prom), time.monotonic()
            time.sleep(SECONDS)
            last, t1 = own_metrics(prom), time.monotonic()
            scrape = prom.query('max(scrape_duration_seconds{job="synthetic"})')
            scraped = prom.query('sum(scrape_samples_scraped{job="synthetic"})')
            return {
                "tenants": tenants,
                "targets": len(targets),
                "series_exposed": series,
                "head_series": int(last["prometheus_tsdb_head_series"]),
                "rss_mib": round(last["process_resident_memory_bytes"] / 2**20),
                # every scraped sample is appended once per 15 s interval
                "samples_per_second": round(float(scraped[0]["value"][1]) / 15) if scraped else None,
                "head_chunks": int(last["prometheus_tsdb_head_chunks"]),
                "rss_growth_mib_during_run": round((last["process_resident_memory_bytes"]
                                                    - first["process_resident_memory_bytes"]) / 2**20),
                "measured_seconds": round(t1 - t0),
                "scrape_seconds": round(float(scrape[0]["value"][1]), 3) if scrape else None,
                "run_seconds": SECONDS,
            }
    finally:
        for t in targets:
            t.close()


def main() -> int:
    results: dict[str, Any] = {"tenants_measured": TENANTS, "series_per_tenant": {}, "prometheus": []}
    template: list[str] = []
    for name, measure in (("postgres", measure_postgres), ("redis", measure_redis), ("app", measure_app)):
        started = time.monotonic()
        stats, lines = measure(TENANTS)
        stats["seconds"] = round(time.monotonic() - started, 1)
        results["series_per_tenant"][name] = stats
        template += lines
        print(f"{name}: {json.dumps(stats)}", flush=True)
    results["series_per_tenant"]["temporal"] = temporal_from_catalog()
    print(f"temporal: {json.dumps(results['series_per_tenant']['temporal'])}", flush=True)
    for tenants in SCALES:
        cost = prometheus_cost(template, tenants)
        results["prometheus"].append(cost)
        print(f"prometheus: {json.dumps(cost)}", flush=True)
    out = Path(os.environ.get("BENCH_SCALING_OUT", tempfile.gettempdir())) / "obsbundle-scaling.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
