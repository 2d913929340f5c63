"""The exporter's HTTP server under load, against the 1,000-tenant PostgreSQL of benchmarks/postgres.

Measured (issue 16): a single scrape's median; 200 concurrent scrapes (all answered? p50/p99,
target p99 <= single + 3 s); 100 concurrent /-/healthy; 100 slowloris sockets held for 60 s
(re-opened as the idle timeout closes them) while scrapes run every 2 s (target: scrape latency
unchanged, exporter thread count never above its idle count plus the worker pool). Not a test:
run it by hand (`make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import threading
import time
from pathlib import Path

import httpx

from benchmarks.postgres.bench import TABLES, seed
from benchmarks.results import record
from exporters.http import WORKERS
from obsbundle.services import ExporterProcess, PostgresServer


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _concurrent(host: str, port: int, path: str, n: int, timeout: float) -> tuple[list[float], int]:
    """`n` requests at once over raw asyncio sockets (HTTP/1.1, Connection: close): an HTTP
    client library costs more CPU per request than the server does and would measure itself."""

    async def one() -> float | None:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = await asyncio.wait_for(reader.read(-1), timeout)
            writer.close()
        except (OSError, TimeoutError):
            return None
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), -1)
        if not head.startswith(b"HTTP/1.1 200") or len(body) != length:
            return None
        return time.monotonic() - started

    results = await asyncio.gather(*(one() for _ in range(n)))
    answered = [r for r in results if r is not None]
    return answered, n - len(answered)


def concurrent(address: str, path: str, n: int, timeout: float = 60.0) -> tuple[list[float], int]:
    host, port = address.rsplit(":", 1)
    return asyncio.run(_concurrent(host, int(port), path, n, timeout))


class Slowloris:
    """`count` sockets that each send a partial request and trickle a header byte every second."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.stop = threading.Event()
        self.reopened = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-a: ")
        return s

    def _run(self) -> None:
        socks = [self._open() for _ in range(self.count)]
        while not self.stop.wait(1.0):
            for i, s in enumerate(socks):
                try:
                    s.sendall(b"a")
                except OSError:
                    s.close()
                    socks[i] = self._open()
                    self.reopened += 1
        for s in socks:
            s.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--slowloris", type=int, default=100)
    parser.add_argument("--hold", type=float, default=60.0, help="seconds the slowloris sockets are held")
    args = parser.parse_args(argv)

    pg = PostgresServer({"max_connections": "100"})
    exporter = None
    try:
        started = time.monotonic()
        seed(pg, args.tenants, 10)
        print(f"seeded {args.tenants} schemas x {len(TABLES)} tables in {time.monotonic() - started:.0f}s")
        exporter = ExporterProcess("postgres", {"sources": {"postgres": [{"name": "bench", "dsn": pg.dsn}]}},
                                   extra_args=["--scrape-timeout", "30s", "--log.level", "warning"])
        assert exporter.proc is not None
        pid, url = exporter.proc.pid, f"http://{exporter.address}/metrics"
        # the process tree: `obsbundle` may be the Python process itself
        for _ in range(3):
            httpx.get(url, timeout=30)
        singles = []
        for _ in range(10):
            singles += concurrent(exporter.address, "/metrics", 1)[0]
        single = statistics.median(singles)
        idle_threads = threads_of(pid)
        print(f"single scrape median {single:.3f}s; exporter threads idle {idle_threads}")

        durations, failed = concurrent(exporter.address, "/metrics", args.concurrency)
        print(f"{args.concurrency} concurrent scrapes: answered {len(durations)}/{args.concurrency}, "
              f"p50 {pct(durations, 0.5):.3f}s p99 {pct(durations, 0.99):.3f}s max {max(durations):.3f}s "
              f"(target p99 <= {single + 3:.3f}s); threads after {threads_of(pid)}")
        healthy, healthy_failed = concurrent(exporter.address, "/-/healthy", 100)
        print(f"100 concurrent /-/healthy: answered {len(healthy)}/100, p50 {pct(healthy, 0.5) * 1000:.0f}ms "
              f"p99 {pct(healthy, 0.99) * 1000:.0f}ms")

        loris = Slowloris(exporter.port, args.slowloris)
        loris.thread.start()
        time.sleep(2)
        during, max_threads = [], threads_of(pid)
        ends = time.monotonic() + args.hold
        while time.monotonic() < ends:
            t = time.monotonic()
            ok = httpx.get(url, timeout=30).status_code == 200
            during.append(time.monotonic() - t if ok else float("inf"))
            max_threads = max(max_threads, threads_of(pid))
            time.sleep(2)
        loris.stop.set()
        loris.thread.join(10)
        print(f"{args.slowloris} slowloris sockets for {args.hold:.0f}s (re-opened {loris.reopened} times after the "
              f"idle timeout): {len(during)} scrapes, median {statistics.median(during):.3f}s "
              f"max {max(during):.3f}s (idle median {single:.3f}s); exporter threads max {max_threads} "
              f"(idle {idle_threads}, pool {WORKERS})")
        met = (failed == 0 and pct(durations, 0.99) <= single + 3 and healthy_failed == 0
               and max(during) <= single + 3 and max_threads <= idle_threads + WORKERS)
        print("targets met" if met else "targets NOT met")
        record("http", f"{args.concurrency} concurrent scrapes, p99 (all answered: {failed == 0})",
               f"{pct(durations, 0.99):.2f} s", target=f"<= single + 3 s ({single + 3:.2f} s)",
               met=failed == 0 and pct(durations, 0.99) <= single + 3)
        record("http", f"scrape during {args.slowloris} slowloris sockets, max", f"{max(during):.2f} s",
               target=f"<= {single + 3:.2f} s", met=max(during) <= single + 3)
        record("http", "exporter threads under slowloris", str(max_threads),
               target=f"<= idle + pool ({idle_threads + WORKERS})", met=max_threads <= idle_threads + WORKERS)
        return 0 if met else 1
    finally:
        if exporter is not None:
            exporter.close()
        pg.close()
