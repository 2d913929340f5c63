"""Seed 1,000 tenant schemas x 8 tables, then scrape both exporters in the same run, side by side.

The peer is Debian's prometheus-postgres-exporter with its defaults plus the per-table custom
queries a user would write for per-tenant figures (peer_queries.yaml). Printed per exporter:
scrape p50/p99, series, bytes, exporter CPU seconds per scrape and peak RSS. Not a test: run it
by hand (`make bench`), on a quiet machine, and copy the figures into docs/postgres.md.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from obsbundle.services import DebianExporter, ExporterProcess, PostgresServer, wait_for

HERE = Path(__file__).parent
PEER_QUERIES = HERE / "peer_queries.yaml"
TABLES = ("orders", "order_items", "invoices", "users", "sessions", "events", "jobs", "settings")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def seed(pg: PostgresServer, tenants: int, rows: int, batch: int = 50) -> None:
    """`batch` tenants per transaction: one round trip each, and few enough relations that their
    locks fit the lock table (each new table, index and TOAST table holds one until commit)."""
    import psycopg

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        for first in range(0, tenants, batch):
            statements = ["BEGIN"]
            for i in range(first, min(tenants, first + batch)):
                schema = f"tenant_t{i:05d}" if tenants > 9999 else f"tenant_t{i:04d}"
                statements.append(f"CREATE SCHEMA {schema}")
                for table in TABLES:
                    statements.append(f"CREATE TABLE {schema}.{table} (id int PRIMARY KEY, payload text)")
                    statements.append(
                        f"INSERT INTO {schema}.{table} SELECT g, md5(g::text) FROM generate_series(1, {rows}) g"
                    )
            statements.append("COMMIT")
            conn.execute("; ".join(statements))
        conn.execute("ANALYZE")


@dataclass
class Result:
    name: str
    durations: list[float]
    series: int
    size: int
    cpu_per_scrape: float
    peak_rss: int

    def p(self, q: float) -> float:
        ordered = sorted(self.durations)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def series_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def scrape(url: str) -> tuple[float, str]:
    started = time.perf_counter()
    response = httpx.get(url, timeout=120)
    response.raise_for_status()
    return time.perf_counter() - started, response.text


def measure(targets: dict[str, tuple[str, int]], scrapes: int) -> dict[str, Result]:
    """Interleave the exporters' scrapes so both see the same server load."""
    for url, _ in targets.values():
        scrape(url)  # warm up: connections, caches, first-scrape allocations
    durations: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, float] = {}
    last: dict[str, str] = {}
    for name, (_, pid) in targets.items():
        cpu[name] = -cpu_seconds(pid)
    for _ in range(scrapes):
        for name, (url, _) in targets.items():
            took, text = scrape(url)
            durations[name].append(took)
            last[name] = text
    for name, (_, pid) in targets.items():
        cpu[name] += cpu_seconds(pid)
    return {
        name: Result(name, durations[name], series_count(last[name]), len(last[name].encode()),
                     cpu[name] / scrapes, peak_rss(pid))
        for name, (_, pid) in targets.items()
    }


def start_peer(pg: PostgresServer) -> DebianExporter:
    peer = DebianExporter("prometheus-postgres-exporter", [f"--extend.query-path={PEER_QUERIES}", "--log.level=warn"],
                          env={"DATA_SOURCE_NAME": pg.dsn + "?sslmode=disable"})
    wait_for(lambda: httpx.get(peer.metrics_url, timeout=60).status_code == 200, 60, what="peer exporter")
    return peer


def report(results: dict[str, Result], tenants: int) -> str:
    ours, peer = results["obsbundle"], results["peer"]
    rows = [
        ("scrape p50 (s)", f"{ours.p(0.5):.3f}", f"{peer.p(0.5):.3f}"),
        ("scrape p99 (s)", f"{ours.p(0.99):.3f}", f"{peer.p(0.99):.3f}"),
        ("series", f"{ours.series:,}", f"{peer.series:,}"),
        ("series per tenant", f"{ours.series / tenants:.1f}", f"{peer.series / tenants:.1f}"),
        ("bytes", f"{ours.size:,}", f"{peer.size:,}"),
        ("exporter CPU s / scrape", f"{ours.cpu_per_scrape:.3f}", f"{peer.cpu_per_scrape:.3f}"),
        ("peak RSS (MB)", f"{ours.peak_rss / 2**20:.1f}", f"{peer.peak_rss / 2**20:.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'':{width}}  {'obsbundle':>12}  {'postgres_exporter':>18}"]
    lines += [f"{label:{width}}  {a:>12}  {b:>18}" for label, a, b in rows]
    ratio = peer.p(0.5) / ours.p(0.5) if ours.p(0.5) else float("inf")
    lines.append(f"p50 speed-up: {ratio:.1f}x (target >= 8x); "
                 f"tenant series {ours.series / tenants:.1f} (target <= 30); "
                 f"RSS {ours.peak_rss / 2**20:.0f} MB (target <= 150)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.postgres", description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10, help="rows per table")
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args(argv)

    pg = PostgresServer({"max_connections": "100"})
    ours = peer = None
    met = False
    try:
        started = time.monotonic()
        seed(pg, args.tenants, args.rows)
        print(f"seeded {args.tenants} schemas x {len(TABLES)} tables in {time.monotonic() - started:.0f}s")
        ours = ExporterProcess("postgres", {"sources": {"postgres": [{"name": "bench", "dsn": pg.dsn}]}},
                               extra_args=["--scrape-timeout", "30s", "--log.level", "warning"])
        peer = start_peer(pg)
        assert ours.proc is not None and peer.proc is not None
        results = measure({
            "obsbundle": (f"http://{ours.address}/metrics", ours.proc.pid),
            "peer": (peer.metrics_url, peer.proc.pid),
        }, args.scrapes)
        print(report(results, args.tenants))
        ours_r, peer_r = results["obsbundle"], results["peer"]
        met = (ours_r.p(0.5) * 8 <= peer_r.p(0.5) and ours_r.series / args.tenants <= 30
               and ours_r.peak_rss <= 150 * 2**20)
    finally:
        if ours is not None:
            ours.close()
        if peer is not None:
            peer.close()
        pg.close()
    return 0 if met else 1
