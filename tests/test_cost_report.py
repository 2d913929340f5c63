"""Per-tenant cost end to end: the example API under a known load and the PostgreSQL exporter over
seeded schemas, scraped by a real Prometheus evaluating the generated cost rules; then the real
`obsbundle usage report` CLI reads them back. Figures are checked against usage counted by the
load generator and schema sizes read from PostgreSQL table by table."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from generators.cost import RULE_FILE, render
from obsbundle import config as obsconfig
from obsbundle.services import (
    ExporterProcess,
    PostgresServer,
    PrometheusServer,
    UvicornService,
    run_cli,
)

ROOT = Path(__file__).resolve().parent.parent
WINDOW = 30  # cost.resolution, seconds
# Requests per tenant, sent as one burst inside one recording window. Prometheus extrapolates a
# window's increase to its edges by at most one scrape interval: 0.2 s / 30 s = 0.67% at most.
BURST = {"acme": 120, "beta": 60, "gamma": 30}
ROWS = {"acme": 20000, "beta": 5000, "gamma": 1000}
PRICE_PER_1000_REQUESTS = 3.0
PRICE_PER_GB_MONTH = 100.0
PRICE_PER_GB_EGRESS = 50.0
FIXED_MONTHLY = 730.0  # 1.00 an hour with hours_per_month 730
COST = {
    "currency": "EUR",
    "resolution": f"{WINDOW}s",
    "hours_per_month": 730,
    "prices": {
        "api_requests": {"price": PRICE_PER_1000_REQUESTS, "per": 1000},
        "db_storage": {"price": PRICE_PER_GB_MONTH, "per": 1},
        "egress": {"price": PRICE_PER_GB_EGRESS, "per": 1},
        "db_time": None, "redis_memory": None, "workflow_executions": None,
        "inference_tokens": None,
    },
    "fixed": [{"name": "platform", "monthly": FIXED_MONTHLY, "driver": "api_requests"}],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("cost")
    config_file = tmp / "obsbundle.yaml"
    config_file.write_text(yaml.safe_dump({"cost": COST}))
    rules = tmp / "cost.rules.yaml"
    rules.write_text(render(obsconfig.load(str(config_file)))[RULE_FILE])
    pg = PostgresServer()
    for tenant, rows in ROWS.items():
        pg.execute(f"CREATE SCHEMA tenant_{tenant}")
        pg.execute(f"CREATE TABLE tenant_{tenant}.events (id int PRIMARY KEY, body text)"
                   " WITH (autovacuum_enabled = off)")
        pg.execute(f"INSERT INTO tenant_{tenant}.events SELECT g, repeat('x', 100) FROM generate_series(1, {rows}) g")
    exporter = ExporterProcess("postgres", {"sources": {"postgres": [{"name": "main", "dsn": pg.dsn}]}})
    app = UvicornService("examples.agent_api:app", env={"OBSBUNDLE_CONFIG": str(config_file)}, cwd=ROOT)
    prom = PrometheusServer(targets={"agent-api": [app.address], "postgres": [exporter.address]},
                            rule_files=[str(rules)], scrape_interval="200ms", evaluation_interval="1s")
    yield {"pg": pg, "app": app, "prom": prom, "config": config_file, "tmp": tmp}
    for service in (prom, app, exporter, pg):
        service.close()


def schema_bytes(pg: PostgresServer, tenant: str) -> int:
    ((size,),) = pg.execute(f"SELECT pg_total_relation_size('tenant_{tenant}.events'::regclass)")
    return int(size)


async def _burst(url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Requests answered and response body bytes received, per tenant."""
    ok = {t: 0 for t in BURST}
    received = {t: 0 for t in BURST}
    async with httpx.AsyncClient(base_url=url, timeout=10, headers={"Accept-Encoding": "identity"}) as client:
        async def one(tenant: str) -> None:
            response = await client.get("/v1/echo", headers={"X-Tenant-ID": tenant})
            if response.status_code == 200:
                ok[tenant] += 1
                received[tenant] += len(response.content)

        order = [t for t, n in BURST.items() for _ in range(n)]
        for start in range(0, len(order), 10):
            await asyncio.gather(*(one(t) for t in order[start:start + 10]))
    return ok, received


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


@pytest.fixture(scope="module")
def measured(stack: dict[str, Any]) -> dict[str, Any]:
    """One burst per tenant in the middle of a window, inside a two-window report range."""
    app, prom = stack["app"], stack["prom"]
    with httpx.Client(base_url=app.url) as client:  # create the series before the range starts
        for tenant in BURST:
            client.get("/v1/echo", headers={"X-Tenant-ID": tenant}).raise_for_status()
    prom.wait_query('count(tenant:usage_api_requests:increase30s{tenant_id=~"acme|beta|gamma"}) == 3', timeout=60)
    prom.wait_query('count(tenant:usage_db_storage:increase30s{tenant_id=~"acme|beta|gamma"}) == 3', timeout=60)
    start = math.ceil((time.time() + 1) / WINDOW) * WINDOW
    _sleep_until(start + 5)
    sent, received = asyncio.run(_burst(app.url))
    finished = time.time()
    assert finished < start + WINDOW - 3, f"the burst took {finished - start - 5:.1f}s and crossed a window edge"
    end = start + 2 * WINDOW
    _sleep_until(end + 3)
    return {"start": start, "end": end, "sent": sent, "received": received}


def _report(stack: dict[str, Any], measured: dict[str, Any], fmt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    iso = {k: datetime.fromtimestamp(measured[k], UTC).isoformat() for k in ("start", "end")}
    return run_cli("usage", "report", "--config", str(stack["config"]), "--prometheus", stack["prom"].url,
                   "--from", iso["start"], "--to", iso["end"], "--format", fmt, *extra)


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_report_matches_counted_usage_and_seeded_sizes(stack: dict[str, Any], measured: dict[str, Any]) -> None:
    assert measured["sent"] == BURST
    done = _report(stack, measured, "csv")
    assert done.returncode == 0, done.stderr
    rows = _csv_rows(done.stdout)
    line = {(r["tenant_id"], r["resource"]): r for r in rows}
    hours = (measured["end"] - measured["start"]) / 3600
    for tenant, requests in BURST.items():
        got = line[(tenant, "api_requests")]
        assert float(got["quantity"]) == pytest.approx(requests, rel=0.01)
        assert got["unit"] == "requests" and got["currency"] == "EUR"
        assert float(got["unit_price"]) == pytest.approx(PRICE_PER_1000_REQUESTS / 1000)
        assert float(got["cost"]) == pytest.approx(requests * PRICE_PER_1000_REQUESTS / 1000, rel=0.01)
        egress = line[(tenant, "egress")]
        assert measured["received"][tenant] > 0
        assert float(egress["quantity"]) == pytest.approx(measured["received"][tenant] / 1e9, rel=0.01)
        assert float(egress["cost"]) == pytest.approx(measured["received"][tenant] / 1e9 * PRICE_PER_GB_EGRESS,
                                                      rel=0.01)
        gb_month = schema_bytes(stack["pg"], tenant) / 1e9 * hours / 730
        storage = line[(tenant, "db_storage")]
        assert float(storage["quantity"]) == pytest.approx(gb_month, rel=0.01)
        assert float(storage["cost"]) == pytest.approx(gb_month * PRICE_PER_GB_MONTH, rel=0.01)
    # the fixed cost is allocated in full: its shares add up to the bill for the range
    fixed = [float(r["cost"]) for r in rows if r["resource"] == "fixed_platform"]
    assert math.fsum(fixed) == pytest.approx(FIXED_MONTHLY * hours / 730, rel=1e-6)
    # each tenant's total is the sum of its lines, and the tenants' totals are the report's total
    totals = {r["tenant_id"]: float(r["cost"]) for r in rows if r["resource"] == "total"}
    for tenant, total in totals.items():
        lines = [float(r["cost"]) for r in rows if r["tenant_id"] == tenant and r["resource"] != "total"]
        assert total == pytest.approx(math.fsum(lines), rel=1e-9)
    doc = json.loads(_report(stack, measured, "json").stdout)
    assert doc["currency"] == "EUR"
    assert doc["total"] == pytest.approx(math.fsum(totals.values()), rel=1e-9)
    assert {t["tenant_id"]: t["total"] for t in doc["tenants"]} == pytest.approx(totals, rel=1e-9)


def test_one_tenant_report_holds_only_that_tenant(stack: dict[str, Any], measured: dict[str, Any]) -> None:
    done = _report(stack, measured, "csv", "--tenant", "beta")
    assert done.returncode == 0, done.stderr
    rows = _csv_rows(done.stdout)
    assert {r["tenant_id"] for r in rows} == {"beta"}
    requests = next(r for r in rows if r["resource"] == "api_requests")
    assert float(requests["quantity"]) == pytest.approx(BURST["beta"], rel=0.01)


def test_html_report_renders_in_chromium_with_the_csv_numbers(stack: dict[str, Any], measured: dict[str, Any]) -> None:
    browser = shutil.which("chromium")
    assert browser, "chromium is missing: `make test` installs Debian's chromium"
    page = stack["tmp"] / "report.html"
    done = _report(stack, measured, "html", "--output", str(page))
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert "<script" not in text and "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={stack['tmp'] / 'chromium-profile'}", "--enable-logging=stderr", "--v=0"]
    shot = stack["tmp"] / "report.png"
    rendered = subprocess.run([browser, *flags, "--dump-dom", f"file://{page}"],
                              capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    console = [ln for ln in rendered.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == []
    subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1000,2400", f"file://{page}"],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_rows = _csv_rows(_report(stack, measured, "csv").stdout)
    grand = math.fsum(float(r["cost"]) for r in csv_rows if r["resource"] == "total")
    assert f'id="grand-total">{grand:,.2f} EUR<' in rendered.stdout
    for row in (r for r in csv_rows if r["resource"] == "total"):
        assert f"{row['tenant_id']}: {float(row['cost']):,.2f} EUR" in rendered.stdout


def test_unreachable_prometheus_and_empty_range_are_one_line_errors(stack: dict[str, Any]) -> None:
    base = ["usage", "report", "--config", str(stack["config"])]
    down = run_cli(*base, "--prometheus", "http://user:hunter2@127.0.0.1:9", "--from", "2026-11-01",
                   "--to", "2026-11-02")
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert down.stderr.strip().count("\n") == 0 and "hunter2" not in down.stderr
    assert "cannot reach Prometheus at http://user:***@127.0.0.1:9" in down.stderr
    empty = run_cli(*base, "--prometheus", stack["prom"].url, "--from", "2001-01-01", "--to", "2001-01-03")
    assert empty.returncode == 1 and "no usage recorded between 2001-01-01" in empty.stderr
    crooked = run_cli(*base, "--prometheus", stack["prom"].url, "--from", "2026-11-01T00:00:07", "--to", "2026-11-02")
    assert crooked.returncode == 2 and "not on a 30s boundary" in crooked.stderr


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, *sys.argv[1:]]))
