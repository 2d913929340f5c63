"""`python -m benchmarks.cost`: how long a month-long `obsbundle usage report` takes at N tenants.

A month of the cost rules' recorded series (hourly windows, the default resolution) is imported
into a real VictoriaMetrics (promtool's OpenMetrics backfill took over 25 minutes for the same
4.3 million samples here), then the real CLI reports 2026-11-01..2026-12-01 in every format through
the same Prometheus query API it uses against Prometheus.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.results import record
from obsbundle.cost.model import cost_model, cost_series, usage_series
from obsbundle.services import VictoriaMetricsServer, run_cli

START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
PRICED = {"api_requests": 0.20 / 1e6, "db_storage": 0.115, "redis_memory": 5.0}


def write_openmetrics(path: Path, tenants: int, seed: int = 7) -> int:
    """Hourly samples of every recorded series (Prometheus text, millisecond timestamps)."""
    model = cost_model({"cost": {"resolution": "1h"}})
    rng = random.Random(seed)
    level = {f"t{i:05d}": rng.uniform(0.2, 5.0) for i in range(tenants)}
    hours = [int(START.timestamp()) + 3600 * (h + 1) for h in range(int((END - START).total_seconds() // 3600))]
    count = 0
    with path.open("w") as out:
        for resource_name in PRICED:
            name = usage_series(resource_name, model)
            for tenant, lvl in level.items():
                for ts in hours:
                    out.write(f'{name}{{tenant_id="{tenant}"}} {lvl * 1000:.6g} {ts * 1000}\n')
                    count += 1
        name = cost_series(model)
        for tenant, lvl in level.items():
            for resource_name, unit_price in PRICED.items():
                for ts in hours:
                    out.write(f'{name}{{resource="{resource_name}",tenant_id="{tenant}"}} '
                              f"{lvl * 1000 * unit_price:.6g} {ts * 1000}\n")
                    count += 1
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="obsbundle-bench-cost-") as tmp:
        root = Path(tmp)
        om = root / "series.prom"
        t0 = time.perf_counter()
        samples = write_openmetrics(om, args.tenants)
        prom = VictoriaMetricsServer(retention="2y")
        try:
            prom.import_text(om)
            prepared = time.perf_counter() - t0
            config = root / "obsbundle.yaml"
            config.write_text("cost:\n  resolution: 1h\n")
            results = []
            for fmt in ("csv", "json", "html"):
                started = time.perf_counter()
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                done = run_cli("usage", "report", "--config", str(config), "--prometheus", prom.url,
                               "--from", START.date().isoformat(), "--to", END.date().isoformat(),
                               "--format", fmt, "--output", str(root / f"report.{fmt}"), timeout=1800)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if done.returncode:
                    print(done.stderr, file=sys.stderr)
                    return 1
                results.append((fmt, time.perf_counter() - started, after.ru_utime - before.ru_utime,
                                (root / f"report.{fmt}").stat().st_size))
        finally:
            prom.close()
    print(f"cost report, {args.tenants} tenants, 30 days hourly, {samples:,} backfilled samples "
          f"(prepared in {prepared:.0f} s)")
    print("| format | wall s | CLI CPU s | output bytes |")
    print("|---|---|---|---|")
    for fmt, wall, cpu, size in results:
        print(f"| {fmt} | {wall:.1f} | {cpu:.1f} | {size:,} |")
        record("cost", f"usage report, {args.tenants} tenants x 30 days, {fmt}", f"{wall:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
