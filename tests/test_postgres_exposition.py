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


def test_set_columns_writes_the_same_bytes_as_one_sample_at_a_time() -> None:
    """The per-tenant fast path (one column of the per-schema query) changes no byte, and a later
    add() to the same family falls back to the generic encoder with sum semantics."""
    tricky = ['plain', 'quo"te', 'back\\slash', 'new\nline', 'ünïcödé', '', 'a' * 300, 't9', 't10']
    column: dict = {tenant: (10**15 if i % 2 else 0.5) + i for i, tenant in enumerate(tricky)}
    column.update({"none": None, "nan": float("nan"), "inf": float("inf"), "int": 3, "neg": -1e6})
    fast, slow = MetricSet(static_catalog(), {"server": 'm"ain'}), MetricSet(static_catalog(), {"server": 'm"ain'})
    for ms in (fast, slow):
        ms.declare_empty(["pg_tenant_tables", "pg_tenant_live_rows"])
        ms.add("pg_version_info", 1, {"tenant_id": "_shared", "version": "15"})
    keys = list(column)
    fast.set_columns("tenant_id", keys, {"pg_tenant_tables": list(column.values()),
                                         "pg_tenant_live_rows": [None] * len(keys)})
    fast.set_columns("tenant_id", keys, {"pg_tenant_connections": list(column.values())}, {"state": "idle"})
    for tenant, value in column.items():
        slow.set("pg_tenant_tables", value, {"tenant_id": tenant})
        slow.set("pg_tenant_connections", value, {"tenant_id": tenant, "state": "idle"})
    assert fast.render_text() == slow.render_text() == reference(slow)
    assert fast.value("pg_tenant_tables", server='m"ain', tenant_id="t9") == column["t9"]

    fast.add("pg_tenant_tables", 1, {"tenant_id": "t9"})
    slow.add("pg_tenant_tables", 1, {"tenant_id": "t9"})
    assert fast.render_text() == slow.render_text()
    merged = MetricSet(static_catalog())
    merged.merge(fast)
    assert merged.render_text() == slow.render_text()


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
