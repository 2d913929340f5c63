"""Background passes are served as bytes rendered once per completed pass (runtime/exposition.py).

The runner here drives real BackgroundRefresh threads and one per-scrape collector; the bodies
are checked against prometheus_client's parser and against the reference encoder's samples.
"""

from __future__ import annotations

import gzip
import threading
import zlib

import httpx
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collectors.metricset import MetricSet
from collectors.runtime import BackgroundRefresh, Collector, CollectorError
from exporters.http import ExporterServer
from exporters.runtime import ScrapeRunner
from obsbundle.catalog import Metric, static_catalog
from obsbundle.services import parse_metrics, wait_for

CATALOG = static_catalog().extended([
    Metric("test_up", "gauge", "Test source up.", ("server", "tenant_id"), "test"),
    Metric("test_rows", "gauge", "Rows per tenant.", ("server", "tenant_id"), "test"),
    Metric("test_live", "gauge", "A per-scrape figure.", ("server", "tenant_id"), "test"),
    Metric("test_wait_seconds", "histogram", "A histogram from a pass.", ("server", "tenant_id"), "test"),
])


class Pass:
    """A refresh whose values the test sets; `hold` makes the next refresh block mid-pass."""

    def __init__(self, tenants: int) -> None:
        self.value = 1.0
        self.tenants = tenants
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def __call__(self, out: MetricSet) -> None:
        self.entered.set()
        self.hold.wait(10)
        for i in range(self.tenants):
            out.add("test_rows", self.value + i, {"tenant_id": f"t{i:03d}"})
        out.add_histogram("test_wait_seconds", [(0.1, self.value), (float("inf"), 2 * self.value)], self.value,
                          {"tenant_id": "t000"})


class Live(Collector):
    """A per-scrape collector that also writes into a family the passes fill (test_rows)."""

    name = "live"
    server = "s1"

    def __init__(self) -> None:
        self.scrapes = 0

    def collect(self, out: MetricSet, deadline: float) -> None:
        self.scrapes += 1
        out.add("test_live", self.scrapes, {"tenant_id": "_shared"})
        out.add("test_rows", 100, {"tenant_id": "live-only"})


def runner_with_passes() -> tuple[ScrapeRunner, list[BackgroundRefresh], list[Pass]]:
    passes = [Pass(50), Pass(20)]
    refreshes = [BackgroundRefresh("bg", server, p, CATALOG, interval=60, up_metric="test_up")
                 for server, p in zip(("s1", "s2"), passes, strict=True)]
    return ScrapeRunner("test", [*refreshes, Live()], CATALOG, timeout=5), refreshes, passes


def reference_samples(runner: ScrapeRunner) -> dict:
    """What the reference encoder makes of the same scrape's merged samples."""
    families = runner.scrape()

    class Registry:
        def collect(self) -> list:
            return families

    return parse_metrics(generate_latest(Registry()).decode())  # type: ignore[arg-type]


def test_pass_bytes_are_identical_between_passes_and_rerendered_after_the_next() -> None:
    runner, refreshes, passes = runner_with_passes()
    for bg in refreshes:
        bg.refresh_once()
    first, second = runner.scrape_exposition(), runner.scrape_exposition()
    assert first.cached_bytes is second.cached_bytes  # not re-rendered between passes
    assert b't0' in first.cached_bytes and b"test_live" not in first.cached_bytes
    assert first.body != second.body  # the per-scrape part is fresh on every scrape
    assert parse_metrics(second.body.decode())["test_live"][(("server", "s1"), ("tenant_id", "_shared"))] == 2

    passes[0].value = 7.0
    refreshes[0].refresh_once()  # one pass completes: its bytes are rendered once more
    third = runner.scrape_exposition()
    assert third.cached_bytes is not first.cached_bytes
    samples = parse_metrics(third.body.decode())
    assert samples["test_rows"][(("server", "s1"), ("tenant_id", "t003"))] == 10.0
    assert samples["test_rows"][(("server", "s2"), ("tenant_id", "t003"))] == 4.0  # the other pass unchanged
    assert runner.scrape_exposition().cached_bytes is third.cached_bytes


def test_a_completed_pass_is_rendered_in_its_refresh_thread_not_at_the_next_scrape() -> None:
    runner, refreshes, passes = runner_with_passes()
    for bg in refreshes:
        bg.refresh_once()
    runner.scrape_exposition()
    passes[1].value = 5.0
    refreshes[1].refresh_once()  # the runner's hook builds the new block here
    prepared = runner._exposition.prepared
    assert b'test_wait_seconds_sum{server="s2",tenant_id="t000"} 5.0' in prepared
    assert b"test_rows" not in prepared  # the live collector writes test_rows too: served per scrape
    assert runner.scrape_exposition().cached_bytes is prepared  # the scrape only reads it


def test_served_body_equals_the_reference_encoding_of_the_merged_samples() -> None:
    runner, refreshes, _ = runner_with_passes()
    for bg in refreshes:
        bg.refresh_once()
    body = runner.scrape_exposition().body.decode()
    # one HELP/TYPE per family, though two passes and the live collector all write test_rows
    families = {f.name: f for f in text_string_to_metric_families(body)}
    assert body.count("# TYPE test_rows gauge") == 1
    assert body.count("# TYPE test_wait_seconds histogram") == 1
    assert len(families["test_rows"].samples) == 50 + 20 + 1
    ours = parse_metrics(body)
    reference = reference_samples(runner)
    ignored = {"test_live", "obsbundle_collector_duration_seconds", "obsbundle_collector_data_age_seconds"}
    assert {k: v for k, v in ours.items() if k not in ignored} == {
        k: v for k, v in reference.items() if k not in ignored}


def test_gzip_reuses_the_pass_stream_and_decodes_to_the_body() -> None:
    runner, refreshes, _ = runner_with_passes()
    for bg in refreshes:
        bg.refresh_once()
    a, b = runner.scrape_exposition(), runner.scrape_exposition()
    assert gzip.decompress(a.gzipped()) == a.body
    assert zlib.decompress(b.gzipped(), 16 + zlib.MAX_WBITS) == b.body  # one gzip member, valid CRC
    block = len(a.cached_bytes)
    assert a.gzipped()[10:10 + 64] == b.gzipped()[10:10 + 64]  # the same cached deflate stream starts both
    assert block > 0


def test_a_scrape_during_a_pass_serves_the_last_complete_pass() -> None:
    runner, refreshes, passes = runner_with_passes()
    for bg in refreshes:
        bg.refresh_once()
    before = runner.scrape_exposition()
    passes[0].value = 9.0
    passes[0].hold.clear()
    passes[0].entered.clear()
    worker = threading.Thread(target=refreshes[0].refresh_once)
    worker.start()
    try:
        assert passes[0].entered.wait(5)  # the pass is running, and blocked
        during = runner.scrape_exposition()
        assert during.cached_bytes is before.cached_bytes
        assert parse_metrics(during.body.decode())["test_rows"][(("server", "s1"), ("tenant_id", "t000"))] == 1.0
    finally:
        passes[0].hold.set()
        worker.join(10)
    after = parse_metrics(runner.scrape_exposition().body.decode())
    assert after["test_rows"][(("server", "s1"), ("tenant_id", "t000"))] == 9.0


def test_http_serves_the_cached_pass_plain_and_gzipped() -> None:
    runner, refreshes, _ = runner_with_passes()
    for bg in refreshes:
        bg.start()
    server = ExporterServer(runner, "127.0.0.1:0")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        wait_for(lambda: all(bg.refreshes for bg in refreshes), 10, what="first passes")
        url = f"http://127.0.0.1:{server.port}/metrics"
        plain = httpx.get(url, headers={"accept-encoding": "identity"})
        zipped = httpx.get(url, headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        for response in (plain, zipped):
            samples = parse_metrics(response.text)  # httpx decodes the gzip body
            assert samples["test_rows"][(("server", "s2"), ("tenant_id", "t019"))] == 20.0
            assert samples["test_up"][(("server", "s1"), ("tenant_id", "_shared"))] == 1.0
    finally:
        server.shutdown()
        for bg in refreshes:
            bg.close()


def test_a_pass_longer_than_the_interval_is_not_stale_for_its_own_length() -> None:
    """10M keys take minutes with a 1 s interval: the last pass's duration is allowed for, twice;
    data older than that is still reported stale."""
    def slow(out: MetricSet) -> None:
        threading.Event().wait(0.4)  # a pass that takes four intervals
        out.add("test_rows", 1, {"tenant_id": "acme"})

    bg = BackgroundRefresh("bg", "s1", slow, CATALOG, interval=0.1)
    bg.refresh_once()
    assert bg.last_duration >= 0.4
    wait_for(lambda: bg.data_age() > bg.stale_after + 0.1, 5, 0.02)  # past 3 intervals ...
    bg.collect(MetricSet(CATALOG, {"server": "s1"}), 0)  # ... but within the pass's own length: served, ok
    wait_for(lambda: bg.data_age() > bg.stale_after + 2 * bg.last_duration + 0.05, 5, 0.02)
    out = MetricSet(CATALOG, {"server": "s1"})
    with pytest.raises(CollectorError) as failure:
        bg.collect(out, 0)
    assert failure.value.code == "stale"
    assert out.value("test_rows", server="s1", tenant_id="acme") == 1  # still served


_RSS_SCRIPT = """
import threading
from exporters.runtime import return_large_blocks_to_the_os
assert return_large_blocks_to_the_os()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
x = b"x" * (16 << 20); del x   # freeing a big block raises glibc's dynamic mmap threshold
base = rss()
keep = []
def scrape():
    for _ in range(5):
        body = bytes(6 << 20)          # a 10,000-tenant body, built in a pool thread
        keep.append(bytearray(64))     # small objects allocated after it pin the arena's top
        del body
threads = [threading.Thread(target=scrape) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(rss() - base)
"""


def test_freed_scrape_bodies_go_back_to_the_os() -> None:
    """Without the fixed mmap threshold, eight threads that each built 6 MB bodies kept about
    20 MB resident after freeing them (glibc arenas); with it, what is freed is unmapped."""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parent.parent, check=True)
    assert int(done.stdout.strip()) <= 4  # MB still resident after all bodies were freed
