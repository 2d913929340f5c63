"""`obsbundle demo` (what `make demo` runs): the whole bundle on loopback, figures exact to the seed."""

from __future__ import annotations

from pathlib import Path

from obsbundle.services import run_cli

ROOT = Path(__file__).resolve().parent.parent


def test_demo_prints_seeded_per_tenant_figures_through_prometheus() -> None:
    result = run_cli("demo", "--config", str(ROOT / "obsbundle.yaml"), "--duration", "1s", timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("tenant_id"))
    columns = [c.strip() for c in lines[header].split("  ") if c.strip()]
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1:] if line.strip()}
    table = {tenant: dict(zip(columns[1:], values, strict=True)) for tenant, values in rows.items()}

    # Seed: weight w -> 10w agents + 1000w tasks rows, 500w strings + 20w hashes, 2w workflows.
    for tenant, weight in {"acme": 3, "beta": 2, "gamma": 1}.items():
        row = table[tenant]
        assert row["PG live rows"] == f"{1010 * weight:,}"
        assert row["Redis keys"] == f"{520 * weight:,}"
        assert row["Temporal running"] == f"{2 * weight}"
        assert row["Temporal backlog"] == f"{2 * weight}"
        assert float(row["API req/s"]) > 0
    assert table["_unassigned"]["Redis keys"] == "100"  # cache:global:* matches no tenant rule
    assert "rule files loaded" in result.stdout
