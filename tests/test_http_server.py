"""The exporter's HTTP server against hostile and heavy clients: methods, readiness, slowloris, threads.

Behaviour only; the concurrency and slowloris figures are measured in benchmarks/http.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from collectors.metricset import MetricSet
from collectors.runtime import CollectorError
from exporters.http import ExporterServer
from exporters.runtime import ScrapeRunner
from obsbundle.services import parse_metrics
from tests.test_runtime import CATALOG, Sleepy


class Gated:
    """A collector that blocks until released, so a test can look at the server mid-collection."""

    name, server, up_metric = "gated", "s1", "test_up"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.fail: Exception | None = None
        self.calls = 0

    def collect(self, out: MetricSet, deadline: float) -> None:
        self.calls += 1
        self.release.wait(10)
        if self.fail:
            raise self.fail
        out.add("test_rows", 7, {"tenant_id": "acme"})


def serve(runner: ScrapeRunner, **kwargs: object) -> Iterator[str]:
    server = ExporterServer(runner, "127.0.0.1:0", **kwargs)  # type: ignore[arg-type]
    server.start_background()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()


@pytest.fixture
def sleepy() -> Sleepy:
    return Sleepy("rows", 0, {"acme": 4})


@pytest.fixture
def base(sleepy: Sleepy) -> Iterator[str]:
    yield from serve(ScrapeRunner("test", [sleepy], CATALOG, timeout=2), idle_timeout=2)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_methods_other_than_get_and_head_are_405_and_do_not_scrape(base: str, sleepy: Sleepy, method: str) -> None:
    httpx.get(f"{base}/-/healthy")
    time.sleep(0.2)  # the start-up collection has run
    before = sleepy.calls
    response = httpx.request(method, f"{base}/metrics")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert sleepy.calls == before


def test_head_has_headers_and_no_body(base: str) -> None:
    get = httpx.get(f"{base}/metrics")
    head = httpx.head(f"{base}/metrics")
    assert head.status_code == 200
    assert head.content == b""
    # a separate scrape: the same body but for self-timing digits
    assert abs(int(head.headers["content-length"]) - int(get.headers["content-length"])) < 16
    assert head.headers["content-encoding"] == get.headers["content-encoding"] == "gzip"
    assert parse_metrics(get.text)["test_rows"][(("server", "s1"), ("tenant_id", "acme"))] == 4


def test_ready_is_503_until_the_first_collection_then_names_failing_collectors() -> None:
    gated = Gated()
    gated.fail = CollectorError("connection_refused")
    for base in serve(ScrapeRunner("test", [gated], CATALOG, timeout=5)):
        not_ready = httpx.get(f"{base}/-/ready")
        assert not_ready.status_code == 503
        assert httpx.get(f"{base}/-/healthy").status_code == 200
        gated.release.set()
        deadline = time.monotonic() + 5
        while httpx.get(f"{base}/-/ready").status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        ready = httpx.get(f"{base}/-/ready")
        assert ready.status_code == 200  # serving test_up 0 is what Prometheus needs to alert
        assert ready.text == "OK; failing collectors: gated/s1 (connection_refused)\n"
        gated.fail = None
        httpx.get(f"{base}/metrics")
        assert httpx.get(f"{base}/-/ready").text == "OK\n"


def _slowloris(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        socks.append(s)
    return socks


def test_slowloris_sockets_neither_block_a_scrape_nor_grow_threads(sleepy: Sleepy) -> None:
    runner = ScrapeRunner("test", [sleepy], CATALOG, timeout=2)
    server = ExporterServer(runner, "127.0.0.1:0", workers=4, idle_timeout=2)
    server.start_background()
    httpx.get(f"http://127.0.0.1:{server.port}/metrics")
    threads_before = threading.active_count()
    socks = _slowloris(server.port, 100)
    try:
        for s in socks:  # trickle one more header byte: still incomplete
            s.sendall(b"X")
        response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
        assert response.status_code == 200
        assert "test_rows" in response.text
        assert threading.active_count() <= threads_before + 4  # at most the pool fills up
        # the idle timeout closes connections whose headers never completed
        time.sleep(3)
        closed = 0
        for s in socks:
            s.settimeout(2)
            try:
                closed += s.recv(1024) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass
        assert closed == 100
    finally:
        for s in socks:
            s.close()
        server.shutdown()


def test_a_tls_client_hello_to_a_plain_port_does_not_hang_the_server(base: str) -> None:
    port = int(base.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(bytes.fromhex("16030100a5010000a10303") + b"\0" * 40)
    try:
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 200
    finally:
        s.close()


def test_concurrent_scrapes_share_one_collection() -> None:
    slow = Sleepy("rows", 0.5, {"acme": 1})
    for url in serve(ScrapeRunner("test", [slow], CATALOG, timeout=5), workers=2):
        base = url
        httpx.get(f"{base}/metrics")
        before = slow.calls
        results: list[int] = []
        client = httpx.Client(limits=httpx.Limits(max_connections=100), timeout=10)

        def scrape(client: httpx.Client = client, base: str = base, results: list[int] = results) -> None:
            results.append(client.get(f"{base}/metrics").status_code)

        threads = [threading.Thread(target=scrape) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client.close()
        assert results == [200] * 50
        assert slow.calls - before <= 3  # 50 requests, a pool of 2: still a handful of runs
