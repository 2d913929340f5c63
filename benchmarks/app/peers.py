"""`python -m benchmarks.app` (first part): CPU per request and latency added by each instrumentation.

Every variant serves the same FastAPI route from its own uvicorn process on loopback. One client
sends the same sequential requests to each, with raw ids in the path (`/v1/tenants/t3/agents/1234`)
and an X-Tenant-ID header. The server's CPU time comes from /proc/<pid>/stat over the measured
requests, and latency is client-side wall time. "added" is the variant minus the bare app, from
the same run. Variants run interleaved for several rounds, and each figure is the median over the
rounds, so the load of the shared machine moves every variant alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.app.serve import SAMPLE_RATIO, VARIANTS
from benchmarks.results import record
from obsbundle.services import free_port, port_open, wait_for

ROOT = Path(__file__).resolve().parents[2]
REQUESTS = int(os.environ.get("BENCH_APP_REQUESTS", "2000"))
WARMUP = 300
ROUNDS = int(os.environ.get("BENCH_APP_ROUNDS", "3"))
TICKS = os.sysconf("SC_CLK_TCK")
LABELS = {
    "bare": "bare FastAPI (baseline)",
    "obsbundle-notrace": "collectors.app, tracing off",
    "obsbundle-sampled": f"collectors.app, metrics + tenant + traces sampled at {SAMPLE_RATIO}",
    "obsbundle": "collectors.app, metrics + tenant + every request traced",
    "instrumentator": "prometheus-fastapi-instrumentator",
    "starlette-exporter": "starlette-exporter",
    "otel-fastapi": "OpenTelemetry FastAPI instrumentation (traces + metrics)",
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def measure(variant: str) -> tuple[float, float, float]:
    """(CPU µs per request, p50 ms, p99 ms) for one variant, in a fresh server process."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.app.serve", variant, str(port)], cwd=ROOT)
    try:
        wait_for(lambda: port_open(port), 30, what=f"{variant} server")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            def hit(n: int) -> float:
                started = time.perf_counter()
                response = client.get(f"/v1/tenants/t{n % 10}/agents/{n}", headers={"X-Tenant-ID": f"t{n % 10}"})
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.status_code
                return elapsed

            for n in range(WARMUP):
                hit(n)
            before = cpu_seconds(proc.pid)
            latencies = sorted(hit(n) for n in range(REQUESTS))
            cpu = cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait(10)
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99)]
    return cpu / REQUESTS * 1e6, p50 * 1e3, p99 * 1e3


def main() -> int:
    runs: dict[str, list[tuple[float, float, float]]] = {v: [] for v in VARIANTS}
    for _ in range(ROUNDS):
        for variant in VARIANTS:
            runs[variant].append(measure(variant))
    med = {v: tuple(statistics.median(r[i] for r in runs[v]) for i in range(3)) for v in VARIANTS}
    base = med["bare"]
    print(f"{REQUESTS} sequential requests per variant, {ROUNDS} rounds, medians; added = variant - bare\n")
    print("| instrumentation | CPU µs/request | added CPU µs | p50 ms | added p50 µs | p99 ms | added p99 µs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for v in VARIANTS:
        cpu, p50, p99 = med[v]
        print(f"| {LABELS[v]} | {cpu:.0f} | {cpu - base[0]:+.0f} | {p50:.2f} | {(p50 - base[1]) * 1e3:+.0f} "
              f"| {p99:.2f} | {(p99 - base[2]) * 1e3:+.0f} |")
    # "full instrumentation" is traces at the configured ratio (SAMPLE_RATIO), as the goal says
    ours, ours_notrace, peer = med["obsbundle-sampled"][0], med["obsbundle-notrace"][0], med["instrumentator"][0]
    print(f"\ngoal 1 (full collectors.app adds <= instrumentator's CPU): "
          f"{'met' if ours - base[0] <= peer - base[0] else 'NOT met'} "
          f"({ours - base[0]:+.0f} vs {peer - base[0]:+.0f} µs)")
    print(f"goal 2 (tracing off adds <= 100 µs CPU): {'met' if ours_notrace - base[0] <= 100 else 'NOT met'} "
          f"({ours_notrace - base[0]:+.0f} µs)")
    record("app", f"added CPU per request, full (metrics, tenant, traces at {SAMPLE_RATIO})",
           f"{ours - base[0]:+.0f} µs",
           f"{peer - base[0]:+.0f} µs (instrumentator, metrics only)", "<= the instrumentator",
           ours - base[0] <= peer - base[0])
    record("app", "added CPU per request, tracing off", f"{ours_notrace - base[0]:+.0f} µs", target="<= 100 µs",
           met=ours_notrace - base[0] <= 100)
    return 0


