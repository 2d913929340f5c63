"""`obsbundle exporter redis` against Debian's prometheus-redis-exporter `-check-key-groups`, one run.

For 10k, 100k and 1M keys over 1,000 tenants (DEBUG POPULATE per tenant prefix `tenant:<id>:`):
- ours: scrape p50/p99 while background passes run back to back, full-pass time, scanner CPU
  per pass, process CPU per pass, RSS, and the longest Redis command it issued (SLOWLOG with
  slowlog-log-slower-than 0, filtered by client name);
- peer: the same figures for `-check-key-groups '^tenant:([^:]+):' -max-distinct-key-groups 2000`,
  whose cost is paid on every scrape.
Then the memory estimate's error on a keyspace with widely varying value sizes.

`--tenants 10000` is the 10,000-tenant case instead: 10 million keys (1,000 per tenant), the
peer with `-max-distinct-key-groups 20000`, 2 peer scrapes (each walks all 10M keys), and the
targets checked: scrape p99 <= 50 ms, full pass <= 0.75 x the peer's scrape, RSS <= 150 MB
(about 10 minutes, a third of it the peer).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import sys
import time
from typing import Any

import httpx
import redis

from benchmarks.results import record
from obsbundle.services import (
    DebianExporter,
    ExporterProcess,
    RedisServer,
    by_tenant,
    parse_metrics,
    wait_for,
)

PEER = "prometheus-redis-exporter"
TENANTS = 1000
SCALES = (10, 100, 1000)  # keys per tenant -> 10k, 100k, 1M keys over the same 1,000 tenants
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "100"))
PEER_SCRAPES = int(os.environ.get("BENCH_PEER_SCRAPES", "5"))
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def populate(r: redis.Redis, per_tenant: int, tenants: int = TENANTS) -> None:
    """Grow every tenant to `per_tenant` keys (DEBUG POPULATE skips names that already exist)."""
    width = len(str(tenants - 1))
    for first in range(0, tenants, 500):
        pipe = r.pipeline(transaction=False)
        for i in range(first, min(tenants, first + 500)):
            pipe.execute_command("DEBUG", "POPULATE", per_tenant, f"tenant:{i:0{width}d}:", 64)
        pipe.execute()


def slowlog_start(r: redis.Redis) -> None:
    """Log every command over 1 ms (logging all of them would slow Redis and the peer down)."""
    r.config_set("slowlog-max-len", 100_000)
    r.config_set("slowlog-log-slower-than", 1000)
    r.slowlog_reset()
    r.config_resetstat()


def slowlog_stats(r: redis.Redis, client: str | None) -> dict[str, Any]:
    """Longest command and how many took over 5 ms (Redis's own time per command, from SLOWLOG),
    for one client name (None: every client but the benchmark's own), and all commands run."""
    entries = r.execute_command("SLOWLOG", "GET", -1)
    calls: list[tuple[int, str]] = []
    for entry in entries:
        name = entry[5].decode() if len(entry) > 5 and isinstance(entry[5], bytes) else ""
        if name == "bench" or (client is not None and name != client):
            continue
        calls.append((entry[2], entry[3][0].decode().upper()))
    top = max(calls, default=(0, "-"))
    stats = r.info("commandstats")
    return {
        "longest_redis_call_ms": top[0] / 1000, "longest_redis_cmd": top[1],
        "calls_over_5ms": sum(1 for c in calls if c[0] > 5000),
        "calls_over_1ms": len(calls),
        # commands executed, including those run inside scripts
        "redis_commands": sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_slowlog", "cmdstat_config")),
    }


def timed_scrapes(url: str, count: int, pause: float, timeout: float = 120) -> list[float]:
    return timed_scrapes_text(url, count, pause, timeout)[0]


def timed_scrapes_text(url: str, count: int, pause: float, timeout: float = 120) -> tuple[list[float], str]:
    """Scrape durations, and the last body (the peer walks the whole keyspace on every scrape)."""
    times, text = [], ""
    with httpx.Client(timeout=timeout) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = client.get(url)
            response.raise_for_status()
            times.append(time.perf_counter() - started)
            text = response.text
            time.sleep(pause)
    return times, text


def run_ours(server: RedisServer, admin: redis.Redis, keys: int, tenants: int = TENANTS,
             passes: int = 2) -> dict[str, Any]:
    config = {"tenancy": {"max_tenants": max(5000, 2 * tenants)},
              "sources": {"redis": [{"name": "bench", "url": server.url, "scan": {"interval": "1s"}}]}}
    slowlog_start(admin)
    exporter = ExporterProcess("redis", config)
    pid = exporter.proc.pid  # type: ignore[union-attr]

    def shared(name: str) -> float:
        """One `_shared` sample, found in the text without parsing 40,000 series in this process."""
        found = re.search(rf'^{name}{{server="bench",tenant_id="_shared"}} (\S+)$', exporter.scrape_text(60), re.M)
        return float(found.group(1)) if found else 0.0

    try:
        wait_for(lambda: shared("redis_keyspace_passes_total") >= 1, 1200, 2.0, what="first pass")
        # Full passes, polled every 2 s (a scraper every 15-60 s is the real load).
        passes0, cpu0 = shared("redis_keyspace_passes_total"), cpu_seconds(pid)
        wait_for(lambda: shared("redis_keyspace_passes_total") >= passes0 + passes, 1200, 2.0, what="passes")
        passes1, cpu1 = shared("redis_keyspace_passes_total"), cpu_seconds(pid)
        samples = parse_metrics(exporter.scrape_text())
        # Scrape latency, 10 scrapes a second while passes keep running back to back.
        scrapes = timed_scrapes(f"http://{exporter.address}/metrics", SCRAPES, 0.1)

        def metric(name: str) -> float:
            return by_tenant(samples, name).get("_shared", 0.0)

        rss, peak = rss_mb(pid)
        return {
            "keys": keys, "counted": sum(by_tenant(samples, "redis_tenant_keys").values()),
            "series": sum(len(v) for v in samples.values()),
            "scrape_p50_ms": 1000 * statistics.median(scrapes), "scrape_p99_ms": 1000 * percentile(scrapes, 0.99),
            "pass_s": metric("redis_keyspace_pass_duration_seconds"),
            "pass_cpu_s": metric("redis_keyspace_pass_cpu_seconds"),
            "process_cpu_per_pass_s": (cpu1 - cpu0) / max(1.0, passes1 - passes0),
            "longest_roundtrip_ms": 1000 * metric("redis_keyspace_pass_longest_call_seconds"),
            "paused_s": metric("redis_keyspace_pass_paused_seconds"),
            **slowlog_stats(admin, "obsbundle-exporter"),
            "rss_mb": rss, "peak_rss_mb": peak,
        }
    finally:
        exporter.close()


def run_peer(server: RedisServer, admin: redis.Redis, keys: int, tenants: int = TENANTS,
             scrapes: int = PEER_SCRAPES) -> dict[str, Any]:
    slowlog_start(admin)
    peer = DebianExporter(PEER, ["-redis.addr", server.url, "-check-key-groups", "^tenant:([^:]+):",
                                 "-max-distinct-key-groups", str(2 * tenants)], listen_flag="-web.listen-address")
    try:
        assert peer.proc is not None
        pid = peer.proc.pid
        cpu0 = cpu_seconds(pid)
        times, text = timed_scrapes_text(peer.metrics_url, scrapes, 0.5, timeout=1800)
        cpu1 = cpu_seconds(pid)
        counted = sum(by_tenant(parse_metrics(text), "redis_key_group_count", db="db0").values())
        rss, peak = rss_mb(pid)
        return {
            "keys": keys, "counted": counted,
            "scrape_p50_ms": 1000 * statistics.median(times), "scrape_p99_ms": 1000 * percentile(times, 0.99),
            "process_cpu_per_scrape_s": (cpu1 - cpu0) / scrapes,
            **slowlog_stats(admin, None),
            "rss_mb": rss, "peak_rss_mb": peak,
        }
    finally:
        peer.close()


def memory_accuracy(sigma: float, tenants: int = 100, per_tenant: int = 1000) -> dict[str, Any]:
    """Relative error of redis_tenant_memory_bytes against the exact MEMORY USAGE sum, default sampling."""
    from collectors.metricset import MetricSet
    from exporters.redis import build
    from obsbundle import config as cfg
    from obsbundle.catalog import static_catalog

    rng = random.Random(7)
    with RedisServer() as server:
        r = redis.Redis.from_url(server.url, client_name="bench")
        wait_for(r.ping, 15)
        exact: dict[str, int] = {}
        cvs: dict[str, float] = {}
        for t in range(tenants):
            pipe = r.pipeline(transaction=False)
            names = [f"tenant:m{t:03d}:{i}" for i in range(per_tenant)]
            for name in names:
                if rng.random() < 0.8:
                    pipe.set(name, "v" * int(rng.lognormvariate(5, sigma)))
                else:
                    pipe.hset(name, mapping={f"f{j}": "x" * rng.randint(1, 50) for j in range(rng.randint(1, 80))})
            pipe.execute()
            pipe = r.pipeline(transaction=False)
            for name in names:
                pipe.memory_usage(name)
            sizes = pipe.execute()
            exact[f"m{t:03d}"] = sum(sizes)
            cvs[f"m{t:03d}"] = statistics.pstdev(sizes) / statistics.fmean(sizes)
        collectors, _ = build(cfg.parse(f"sources:\n  redis:\n    - name: acc\n      url: {server.url}\n"))
        scanner = collectors[1]
        scanner.refresh_once()  # type: ignore[attr-defined]
        out = MetricSet(static_catalog(), {"server": "acc"})
        scanner.collect(out, time.monotonic() + 5)
        errors = {t: abs(out.value("redis_tenant_memory_bytes", tenant_id=t) - v) / v for t, v in exact.items()}
        sampled = scanner.last_pass.tallies["m000"].mem_n  # type: ignore[attr-defined]
        fpc = math.sqrt(1 - sampled / per_tenant)
        within = sum(1 for t, e in errors.items() if e <= 3 * cvs[t] / math.sqrt(sampled) * fpc)
        r.close()
    bound = 3 * statistics.median(cvs.values()) / math.sqrt(sampled) * fpc
    return {"sigma": sigma, "cv": statistics.median(cvs.values()), "bound_pct": 100 * bound, "within_bound": within,
            "tenants": tenants, "keys_per_tenant": per_tenant, "sampled_per_tenant": sampled,
            "median_error_pct": 100 * statistics.median(errors.values()),
            "p95_error_pct": 100 * percentile(list(errors.values()), 0.95), "max_error_pct": 100 * max(errors.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=TENANTS,
                        help="10000: the 10M-key case alone (default: 10k/100k/1M keys over 1,000 tenants)")
    args = parser.parse_args(argv)
    if args.tenants != TENANTS:
        return main_tenants(args.tenants)
    results: dict[str, Any] = {"ours": [], "peer": []}
    with RedisServer() as server:
        admin = redis.Redis.from_url(server.url, client_name="bench")
        wait_for(admin.ping, 15)
        for per_tenant in SCALES:
            populate(admin, per_tenant)
            keys = admin.dbsize()
            print(f"-- {keys:,} keys over {TENANTS} tenants; load average {os.getloadavg()[0]:.1f}", flush=True)
            ours = run_ours(server, admin, keys)
            print("ours", json.dumps(ours), flush=True)
            peer = run_peer(server, admin, keys)
            print("peer", json.dumps(peer), flush=True)
            results["ours"].append(ours)
            results["peer"].append(peer)
        admin.close()
    results["memory_accuracy"] = [memory_accuracy(sigma) for sigma in (0.5, 1.5)]
    for acc in results["memory_accuracy"]:
        print("memory", json.dumps(acc), flush=True)
    print_table(results)
    return 0


def main_tenants(tenants: int, per_tenant: int = 1000) -> int:
    """One scale, `per_tenant` keys for each of `tenants` tenants, with the issue's targets."""
    results: dict[str, Any] = {"ours": [], "peer": []}
    with RedisServer() as server:
        admin = redis.Redis.from_url(server.url, client_name="bench")
        wait_for(admin.ping, 15)
        started = time.monotonic()
        populate(admin, per_tenant, tenants)
        keys = admin.dbsize()
        print(f"-- {keys:,} keys over {tenants:,} tenants, seeded in {time.monotonic() - started:.0f}s; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        ours = run_ours(server, admin, keys, tenants, passes=1)
        ours["load_average"] = os.getloadavg()[0]
        print("ours", json.dumps(ours), flush=True)
        peer = run_peer(server, admin, keys, tenants, scrapes=min(PEER_SCRAPES, 2))
        peer["load_average"] = os.getloadavg()[0]
        print("peer", json.dumps(peer), flush=True)
        results["ours"].append(ours)
        results["peer"].append(peer)
        admin.close()
    results["memory_accuracy"] = []
    print_table(results)
    checks = {
        "scrape p99 <= 50 ms": ours["scrape_p99_ms"] <= 50,
        "full pass <= 0.75 x peer scrape": ours["pass_s"] * 1000 <= 0.75 * peer["scrape_p50_ms"],
        "RSS <= 150 MB": ours["peak_rss_mb"] <= 150,
        "every key counted": ours["counted"] == keys,
    }
    for name, ok in checks.items():
        print(f"{'met' if ok else 'MISSED'}: {name}")
    record("redis", f"scrape p99, {keys:,} keys", f"{ours['scrape_p99_ms']:.1f} ms", target="<= 50 ms",
           met=checks["scrape p99 <= 50 ms"])
    record("redis", f"full pass, {keys:,} keys", f"{ours['pass_s']:.1f} s",
           f"{peer['scrape_p50_ms'] / 1000:.1f} s (redis_exporter scrape)", "<= 0.75 x peer",
           checks["full pass <= 0.75 x peer scrape"])
    record("redis", f"exporter peak RSS, {keys:,} keys", f"{ours['peak_rss_mb']:.0f} MB", target="<= 150 MB",
           met=checks["RSS <= 150 MB"])
    return 0 if all(checks.values()) else 1


def print_table(results: dict[str, Any]) -> None:
    print("\n| keys | exporter | scrape p50 | scrape p99 | full pass | CPU per pass "
          "| longest Redis command | RSS |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for ours, peer in zip(results["ours"], results["peer"], strict=True):
        print(f"| {ours['keys']:,} | obsbundle | {ours['scrape_p50_ms']:.1f} ms | {ours['scrape_p99_ms']:.1f} ms "
              f"| {ours['pass_s']:.2f} s | {ours['pass_cpu_s']:.2f} s (process {ours['process_cpu_per_pass_s']:.2f} s) "
              f"| {ours['longest_redis_call_ms']:.2f} ms {ours['longest_redis_cmd']} "
              f"({ours['calls_over_5ms']} over 5 ms, {ours['calls_over_1ms']} over 1 ms) "
              f"| {ours['rss_mb']:.0f} MiB (peak {ours['peak_rss_mb']:.0f}) |")
        print(f"| {peer['keys']:,} | redis_exporter | {peer['scrape_p50_ms']:.0f} ms | {peer['scrape_p99_ms']:.0f} ms "
              f"| {peer['scrape_p50_ms'] / 1000:.2f} s (every scrape) | {peer['process_cpu_per_scrape_s']:.2f} s "
              f"| {peer['longest_redis_call_ms']:.0f} ms {peer['longest_redis_cmd']} "
              f"({peer['calls_over_5ms']} over 5 ms, {peer['calls_over_1ms']} over 1 ms) "
              f"| {peer['rss_mb']:.0f} MiB (peak {peer['peak_rss_mb']:.0f}) |")
    print("\n| key sizes (80% strings, 20% hashes) | median CV | measured per tenant | 3-sigma bound at median CV "
          "| tenants within their own bound | median error | p95 error | max error |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for acc in results["memory_accuracy"]:
        print(f"| lognormal sigma {acc['sigma']}, {acc['tenants']} tenants x {acc['keys_per_tenant']} keys "
              f"| {acc['cv']:.2f} | {acc['sampled_per_tenant']:.0f} | {acc['bound_pct']:.1f}% "
              f"| {acc['within_bound']}/{acc['tenants']} "
              f"| {acc['median_error_pct']:.1f}% | {acc['p95_error_pct']:.1f}% | {acc['max_error_pct']:.1f}% |")


if __name__ == "__main__":
    sys.exit(main())
