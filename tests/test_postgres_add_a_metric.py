"""CONTRIBUTING.md's "Add a per-tenant PostgreSQL metric", followed once, end to end.

The metric is declared the way step 1 says (query group + SQL expression + panel hint), but in a
temporary catalog extension instead of obsbundle/catalog/postgres.py, so the real catalog stays as
it is. Everything else is what the walkthrough promises needs no edit: the schema collector's
SELECT, the column mapping, the docs table and the dashboard lint all pick it up from the catalog.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from collectors.metricset import MetricSet
from exporters.postgres import build
from generators.dashboards import checks as dlint
from generators.dashboards.builder import Board, Q, timeseries
from generators.dashboards.builder import build as build_board
from obsbundle import config
from obsbundle.catalog import Catalog, Metric, PanelHint, static_catalog
from obsbundle.catalog.markdown import metrics_table
from obsbundle.catalog.postgres import SCHEMA_STATS, TENANT
from obsbundle.services import PostgresServer
from tests.support.postgres import TENANTS, tenant_config

# Step 1 of the walkthrough: the one hand edit (here as an extension, not in catalog/postgres.py).
NEW = Metric(
    "pg_tenant_indexes", "gauge", "Indexes on the tenant's tables.", TENANT, "postgres",
    query=SCHEMA_STATS, sql="count(c.oid) FILTER (WHERE c.relkind = 'i')",
    panel=PanelHint(title="Indexes per tenant"),
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return static_catalog().extended([NEW])


@pytest.fixture(scope="module")
def cfg(seeded_pg: PostgresServer) -> dict[str, Any]:
    return config.parse(yaml.safe_dump(tenant_config(seeded_pg.dsn)))


@pytest.fixture(scope="module")
def scraped(cfg: dict[str, Any], catalog: Catalog) -> Iterator[MetricSet]:
    """One collection by the exporter's own schema collector, into a set of the extended catalog."""
    collectors, _ = build(cfg)
    (schemas,) = [c for c in collectors if c.name == "schemas"]
    out = MetricSet(catalog, {"server": "main"})
    try:
        schemas.collect(out, time.monotonic() + 8.0)
        yield out
    finally:
        for collector in collectors:
            collector.close()


def test_the_collector_emits_the_new_metric_with_exact_values(scraped: MetricSet) -> None:
    # every seeded table has exactly one index, its primary key
    for tenant, tables in TENANTS.items():
        assert scraped.value("pg_tenant_indexes", tenant_id=tenant) == len(tables), tenant
    assert scraped.value("pg_tenant_indexes", tenant_id="_unassigned") == 0  # reporting.daily: no index
    # and the metrics declared before it still get their own columns, not a shifted neighbour's
    for tenant, tables in TENANTS.items():
        assert scraped.value("pg_tenant_tables", tenant_id=tenant) == len(tables), tenant
        inserted = sum(v[0] for v in tables.values())
        assert scraped.value("pg_tenant_rows_inserted_total", tenant_id=tenant) == inserted, tenant


def test_without_the_declaration_the_collector_does_not_emit_it(cfg: dict[str, Any]) -> None:
    collectors, _ = build(cfg)
    (schemas,) = [c for c in collectors if c.name == "schemas"]
    out = MetricSet(static_catalog(), {"server": "main"})
    try:
        schemas.collect(out, time.monotonic() + 8.0)
    finally:
        for collector in collectors:
            collector.close()
    assert "pg_tenant_indexes" not in {f.name for f in out.families()}
    assert out.value("pg_tenant_tables", tenant_id="acme") == len(TENANTS["acme"])


def test_the_docs_table_lists_it(catalog: Catalog) -> None:
    row = "| `pg_tenant_indexes` | gauge | - | `tenant_id` | Indexes on the tenant's tables. |"
    assert row in metrics_table("postgres", catalog).splitlines()
    assert row not in metrics_table("postgres").splitlines()


def test_the_dashboard_lint_accepts_a_panel_on_it(cfg: dict[str, Any], catalog: Catalog) -> None:
    metric = catalog["pg_tenant_indexes"]
    assert metric.panel is not None
    query = Q(f'sum by (tenant_id) ({metric.name}{{tenant_id=~"$tenant_id"}})', metric.panel.legend)
    panel = timeseries(metric.panel_title, metric.help, query, unit=metric.grafana_unit)
    board = Board("walkthrough", "Walkthrough", "A panel on the new metric.", metric.name, [("Schemas", [panel])])
    model = build_board(cfg, board, {})
    assert "Indexes per tenant" in [p["title"] for p in model["panels"]]  # beside the alert list
    assert dlint.lint_dashboard(model, catalog, schema=None) == []
    # the same board against the catalog without the declaration: the lint refuses the metric
    problems = dlint.lint_dashboard(model, static_catalog(), schema=None)
    assert any("pg_tenant_indexes" in p for p in problems), problems
