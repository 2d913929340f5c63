"""The fast /metrics encoder (MetricSet.render_text) against prometheus_client's reference.

It exists for the PostgreSQL exporter's thousand-tenant scrapes; it must never change a byte.
"""

from __future__ import annotations

from prometheus_client.exposition import generate_latest

from collectors.metricset import MetricSet
from obsbundle.catalog import Metric, static_catalog


def reference(ms: MetricSet) -> bytes:
    families = ms.families()

    class Registry:
        def collect(self) -> list:
            return families

    return generate_latest(Registry())  # type: ignore[arg-type]


def test_render_text_is_byte_identical_to_generate_latest() -> None:
    catalog = static_catalog().extended([
        Metric("t_hist_seconds", "histogram", "A histogram.\nWith a newline and a \\ backslash.",
               ("server", "tenant_id"), "test", "seconds"),
    ])
    ms = MetricSet(catalog, {"server": "main"})
    tricky = ['plain', 'quo"te', 'back\\slash', 'new\nline', 'ünïcödé', '', 'a' * 300]
    for i, tenant in enumerate(tricky):
        ms.add("pg_tenant_tables", i, {"tenant_id": tenant})
        ms.add("pg_tenant_rows_inserted_total", 10**15 + i, {"tenant_id": tenant})
        ms.add("pg_tenant_connections", 0.5 * i, {"tenant_id": tenant, "state": "idle"})
    ms.add("pg_version_info", 1, {"tenant_id": "_shared", "version": '15.1 "x"'})
    ms.add("pg_cache_hit_ratio", float("inf"), {"tenant_id": "_shared"})
    ms.add("pg_max_connections", -3, {"tenant_id": "_shared"})
    ms.add("obsbundle_build_info", 1, {"exporter": "postgres", "version": "0.1.0"})
    ms.declare_empty(["pg_replication_lag_seconds", "obsbundle_collector_errors_total"])
    ms.add_histogram("t_hist_seconds", [(0.1, 1), (1.0, 3), (float("inf"), 4)], 2.5, {"tenant_id": "a"})
    assert ms.render_text() == reference(ms)
    assert b'tenant_id="quo\\"te"' in ms.render_text()


def test_render_text_of_an_empty_set() -> None:
    ms = MetricSet(static_catalog())
    assert ms.render_text() == reference(ms) == b""


def test_docs_metric_table_is_the_catalog() -> None:
    """docs/postgres.md carries the generated table; it must not drift from the catalog."""
    from pathlib import Path

    from obsbundle.catalog.markdown import metrics_table

    doc = (Path(__file__).parent.parent / "docs" / "postgres.md").read_text()
    assert metrics_table("postgres") in doc


def test_docs_config_example_is_valid() -> None:
    import re
    from pathlib import Path

    from obsbundle import config

    doc = (Path(__file__).parent.parent / "docs" / "postgres.md").read_text()
    block = re.search(r"## Configuration\n\n```yaml\n(.*?)```", doc, re.S)
    assert block is not None
    source = config.parse(block.group(1))["sources"]["postgres"][0]
    assert source["custom_queries"][0]["metrics"][0]["name"] == "queued"
    assert source["size_interval"] == "60s"
