"""Seed 1,000 tenant schemas x 8 tables, then scrape both exporters in the same run, side by side.

The peer is Debian's prometheus-postgres-exporter with its defaults plus the per-table custom
queries a user would write for per-tenant figures (peer_queries.yaml). Printed per exporter:
scrape p50/p99, series, bytes, exporter CPU seconds per scrape and peak RSS, and, interleaved
with the scrapes, the per-schema stats query alone (the floor of our scrape). Not a test: run it
by hand (`make bench`), on a quiet machine, and copy the figures into docs/postgres.md.
`--tenants 10000` is the 80,000-table case (about 10 minutes, most of it seeding and the peer).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.results import record
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


def stats_query(dsn: str) -> Callable[[], float]:
    """A timer of our per-schema stats query alone, on its own connection: rows fetched, no Python
    beyond psycopg's (the floor our scrape is compared with)."""
    import psycopg

    from collectors.postgres.schemas import stats_sql
    from obsbundle.catalog import static_catalog
    from obsbundle.catalog.postgres import SCHEMA_STATS

    conn = psycopg.connect(dsn, autocommit=True)
    query = stats_sql(static_catalog().by_query(SCHEMA_STATS))

    def run() -> float:
        started = time.perf_counter()
        conn.execute(query).fetchall()
        return time.perf_counter() - started

    run()
    return run


def measure(targets: dict[str, tuple[str, int]], scrapes: int, query: Callable[[], float]) -> dict[str, Result]:
    """Interleave the exporters' scrapes (and the stats query) so all see the same server load."""
    for url, _ in targets.values():
        scrape(url)  # warm up: connections, caches, first-scrape allocations
    durations: dict[str, list[float]] = {name: [] for name in targets}
    durations["query"] = []
    cpu: dict[str, float] = {}
    last: dict[str, str] = {}
    for name, (_, pid) in targets.items():
        cpu[name] = -cpu_seconds(pid)
    for _ in range(scrapes):
        for name, (url, _) in targets.items():
            took, text = scrape(url)
            durations[name].append(took)
            last[name] = text
            durations["query"].append(query())
    for name, (_, pid) in targets.items():
        cpu[name] += cpu_seconds(pid)
    results = {
        name: Result(name, durations[name], series_count(last[name]), len(last[name].encode()),
                     cpu[name] / scrapes, peak_rss(pid))
        for name, (_, pid) in targets.items()
    }
    results["query"] = Result("query", durations["query"], 0, 0, 0.0, 0)
    return results


def start_peer(dsn: str) -> DebianExporter:
    peer = DebianExporter("prometheus-postgres-exporter", [f"--extend.query-path={PEER_QUERIES}", "--log.level=warn"],
                          env={"DATA_SOURCE_NAME": dsn + "?sslmode=disable"})
    wait_for(lambda: httpx.get(peer.metrics_url, timeout=60).status_code == 200, 60, what="peer exporter")
    return peer


def report(results: dict[str, Result], tenants: int) -> str:
    ours, peer, query = results["obsbundle"], results["peer"], results["query"]
    rows = [
        ("stats query alone p50 (s)", f"{query.p(0.5):.3f}", "-"),
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
    lines.append(f"p50 speed-up: {ratio:.1f}x (target >= {speedup_target(tenants)}x); "
                 f"scrape / stats query: {ours.p(0.5) / query.p(0.5):.2f} (target <= 1.5 at 10,000 tenants); "
                 f"tenant series {ours.series / tenants:.1f} (target <= 30); "
                 f"RSS {ours.peak_rss / 2**20:.0f} MB (target <= 150); "
                 f"load average {os.getloadavg()[0]:.1f}")
    return "\n".join(lines)


def speedup_target(tenants: int) -> int:
    return 10 if tenants >= 10_000 else 8


def met(results: dict[str, Result], tenants: int) -> bool:
    ours, peer, query = results["obsbundle"], results["peer"], results["query"]
    ok = (ours.p(0.5) * speedup_target(tenants) <= peer.p(0.5) and ours.series / tenants <= 30
          and ours.peak_rss <= 150 * 2**20)
    return ok and (tenants < 10_000 or ours.p(0.5) <= 1.5 * query.p(0.5))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.postgres", description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10, help="rows per table")
    parser.add_argument("--scrapes", type=int, default=None, help="default 20, 5 from 10,000 tenants")
    parser.add_argument("--dsn", help="an already seeded server (`--tenants` schemas) instead of a new one")
    args = parser.parse_args(argv)
    scrapes = args.scrapes or (5 if args.tenants >= 10_000 else 20)

    pg = None if args.dsn else PostgresServer({"max_connections": "100"})
    ours = peer = None
    ok = False
    try:
        if pg is not None:
            started = time.monotonic()
            seed(pg, args.tenants, args.rows)
            print(f"seeded {args.tenants} schemas x {len(TABLES)} tables in {time.monotonic() - started:.0f}s",
                  flush=True)
        dsn = args.dsn or pg.dsn  # type: ignore[union-attr]
        config = {"tenancy": {"max_tenants": max(5000, 2 * args.tenants)},
                  "sources": {"postgres": [{"name": "bench", "dsn": dsn}]}}
        ours = ExporterProcess("postgres", config, extra_args=["--scrape-timeout", "30s", "--log.level", "warning"])
        # the first size refresh stats every file (24 s at 80,000 tables): measure after it
        wait_for(lambda: "pg_tenant_schema_size_bytes{" in ours.scrape_text(60), 300, 2.0,  # type: ignore[union-attr]
                 what="first size refresh")
        peer = start_peer(dsn)
        assert ours.proc is not None and peer.proc is not None
        results = measure({
            "obsbundle": (f"http://{ours.address}/metrics", ours.proc.pid),
            "peer": (peer.metrics_url, peer.proc.pid),
        }, scrapes, stats_query(dsn))
        print(report(results, args.tenants))
        ok = met(results, args.tenants)
        o, pe, q = results["obsbundle"], results["peer"], results["query"]
        record("postgres", f"scrape p50, {args.tenants:,} tenants", f"{o.p(0.5):.3f} s",
               f"{pe.p(0.5):.3f} s (postgres_exporter)", f">= {speedup_target(args.tenants)}x faster",
               o.p(0.5) * speedup_target(args.tenants) <= pe.p(0.5))
        record("postgres", f"scrape / own stats query, {args.tenants:,} tenants",
               f"{o.p(0.5) / q.p(0.5):.2f}", target="<= 1.5 (10,000 tenants)",
               met=None if args.tenants < 10_000 else o.p(0.5) <= 1.5 * q.p(0.5))
        record("postgres", f"exporter peak RSS, {args.tenants:,} tenants", f"{o.peak_rss / 2**20:.0f} MB",
               f"{pe.peak_rss / 2**20:.0f} MB", "<= 150 MB", o.peak_rss <= 150 * 2**20)
    finally:
        if ours is not None:
            ours.close()
        if peer is not None:
            peer.close()
        if pg is not None:
            pg.close()
    return 0 if ok else 1
