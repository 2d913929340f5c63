"""Scrape scheduling shared by every exporter: deadlines, budgets, single-flight, self-metrics.

A scrape runs every collector concurrently, each inside its own budget and all inside the scrape
deadline. A collector that overruns is reported as failed (`code="timeout"`) and its source's up
gauge as 0; its thread is left to finish on its own timeouts, and it is not started again while it
is still running, so a hung server can never pile up threads or hang /metrics. Concurrent scrapes
share one run (single-flight).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric as Family

from collectors.metricset import MetricSet
from collectors.runtime import BackgroundRefresh, Collector, CollectorError, Exposition, ExpositionCache, error_code
from obsbundle import __version__
from obsbundle.catalog import Catalog
from obsbundle.tenancy import SHARED, TenantResolver

log = logging.getLogger("obsbundle.exporter")

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)


def return_large_blocks_to_the_os(threshold: int = 1 << 20) -> bool:
    """Have glibc mmap every allocation of `threshold` bytes or more, and so unmap it when freed.

    A 10,000-tenant scrape builds a few strings of several MB each. glibc raises its mmap
    threshold to the size of the largest block freed so far, so after the first scrape those
    strings come from per-thread arenas, which keep the freed memory: RSS then grows with the
    number of threads that ever rendered a body, not with the data. A fixed threshold keeps RSS at
    what is live. False (and no change) on a libc without mallopt.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


_Outcome = tuple[MetricSet, Exception | None]


@dataclass
class _CollectorState:
    collector: Collector
    budget: float
    up_metric: str | None
    running: Future[_Outcome] | None = None
    errors: dict[str, int] = field(default_factory=dict)
    last_code: str = "none"
    last_duration: float = 0.0
    last_success: bool = False


class ScrapeRunner:
    """Runs an exporter's collectors for one /metrics request and adds its self-metrics."""

    def __init__(
        self,
        exporter: str,
        collectors: Sequence[Collector],
        catalog: Catalog,
        timeout: float = 10.0,
        resolvers: dict[str, TenantResolver] | None = None,
    ) -> None:
        self.exporter = exporter
        self.catalog = catalog
        self.timeout = timeout
        self.resolvers = resolvers or {}
        for c in collectors:
            if not isinstance(c, Collector):
                raise TypeError(f"{type(c).__name__} does not implement collectors.runtime.Collector")
        self._states = [
            _CollectorState(c, budget=min(timeout, c.budget or timeout), up_metric=c.up_metric)
            for c in collectors
        ]
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(collectors)), thread_name_prefix=exporter)
        self._flight_lock = threading.Lock()
        self._flight: Future[MetricSet] | None = None
        self._exposition = ExpositionCache()
        self._background = [c for c in collectors if isinstance(c, BackgroundRefresh)]
        for c in self._background:
            c.on_refresh.append(self._prepare_exposition)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for state in self._states:
            state.collector.start()

    def close(self) -> None:
        for state in self._states:
            try:
                state.collector.close()
            except Exception as exc:  # closing must not mask shutdown
                log.debug("closing %s failed: %s", state.collector.name, error_code(exc))
        self._pool.shutdown(wait=False, cancel_futures=True)

    def failing_collectors(self) -> list[str]:
        """`collector/server (code)` for each collector whose last run failed, for /-/ready."""
        return [
            f"{s.collector.name}/{s.collector.server} ({s.last_code})" for s in self._states if not s.last_success
        ]

    def _prepare_exposition(self) -> None:
        """After any pass: the block of every background collector's last pass, in the order a
        scrape attaches them (the collectors' order), built in the refresh thread."""
        passes = tuple(r for c in self._background if (r := c.rendered()) is not None)
        self._exposition.prepare(passes)

    # -- scraping ----------------------------------------------------------------------------

    def scrape(self) -> list[Family]:
        """The families for one /metrics response; concurrent callers share one run."""
        return self._scrape_set().families()

    def scrape_text(self) -> bytes:
        """One /metrics body in text format 0.0.4 (see scrape_exposition)."""
        return self.scrape_exposition().body

    def scrape_exposition(self) -> Exposition:
        """One /metrics body, rendered without prometheus_client objects (MetricSet.render_text);
        background passes are served as the bytes rendered when they completed (ExpositionCache)."""
        return self._exposition.render(self._scrape_set())

    def _scrape_set(self) -> MetricSet:
        with self._flight_lock:
            flight = self._flight
            owner = flight is None
            if owner:
                flight = Future()
                self._flight = flight
        assert flight is not None
        if not owner:
            return flight.result(timeout=self.timeout + 5)
        try:
            result = self._run()
            flight.set_result(result)
            return result
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        finally:
            with self._flight_lock:
                self._flight = None

    def _submit(self, state: _CollectorState, deadline: float) -> Future[_Outcome] | None:
        if state.running is not None and not state.running.done():
            return None  # still busy from an earlier scrape that overran: do not stack threads

        def run() -> _Outcome:
            out = MetricSet(self.catalog, {"server": state.collector.server})
            try:
                state.collector.collect(out, deadline)
            except Exception as exc:
                return out, exc  # keep what it added (a background collector's last good pass)
            return out, None

        state.running = self._pool.submit(run)
        return state.running

    def _run(self) -> MetricSet:
        started = time.monotonic()
        deadline = started + self.timeout
        result = MetricSet(self.catalog)
        submitted = [
            (state, self._submit(state, min(deadline, started + state.budget))) for state in self._states
        ]
        for state, future in submitted:
            if future is None:
                self._record(state, CollectorError("busy"), 0.0)
                continue
            remaining = max(0.0, min(deadline, started + state.budget) - time.monotonic())
            try:
                out, error = future.result(timeout=remaining)
            except TimeoutError:
                self._record(state, CollectorError("timeout"), time.monotonic() - started)
                continue
            self._record(state, error, time.monotonic() - started)
            result.merge(out)
        self._self_metrics(result)
        return result

    def _record(self, state: _CollectorState, exc: BaseException | None, duration: float) -> None:
        state.last_duration = duration
        state.last_success = exc is None
        if exc is not None:
            code = error_code(exc)
            if state.last_code != code:
                log.warning(
                    "collector %s failed: exporter=%s server=%s code=%s (%s)",
                    state.collector.name, self.exporter, state.collector.server, code, type(exc).__name__,
                )
            state.errors[code] = state.errors.get(code, 0) + 1
            state.last_code = code
        elif state.last_code != "none":
            log.info("collector %s recovered: exporter=%s server=%s", state.collector.name, self.exporter,
                     state.collector.server)
            state.last_code = "none"

    def _self_metrics(self, out: MetricSet) -> None:
        up: dict[tuple[str, str], float] = {}
        for state in self._states:
            c = state.collector
            labels = {"exporter": self.exporter, "server": c.server, "collector": c.name}
            out.add("obsbundle_collector_duration_seconds", state.last_duration, labels)
            out.add("obsbundle_collector_success", 1.0 if state.last_success else 0.0, labels)
            out.declare_empty(["obsbundle_collector_errors_total"])
            for code, count in state.errors.items():
                out.add("obsbundle_collector_errors_total", count, {**labels, "code": code})
            out.add("obsbundle_collector_last_error_info", 1.0, {**labels, "code": state.last_code})
            out.add("obsbundle_collector_data_age_seconds", c.data_age(), labels)
            if state.up_metric:
                key = (state.up_metric, c.server)
                up[key] = min(up.get(key, 1.0), 1.0 if state.last_success else 0.0)
        for (metric, server), value in up.items():
            out.set(metric, value, {"server": server, "tenant_id": SHARED})
        for server, resolver in self.resolvers.items():
            labels = {"exporter": self.exporter, "server": server}
            out.add("obsbundle_tenants_admitted", resolver.admitted, labels)
            out.add("obsbundle_tenants_overflowed_total", resolver.overflowed, labels)
        out.add("obsbundle_build_info", 1.0, {"exporter": self.exporter, "version": __version__})
