"""Scrape scheduling shared by every exporter: deadlines, budgets, single-flight, self-metrics.

A scrape runs every collector concurrently, each inside its own budget and all inside the scrape
deadline. A collector that overruns is reported as failed (`code="timeout"`) and its source's up
gauge as 0; its thread is left to finish on its own timeouts, and it is not started again while it
is still running, so a hung server can never pile up threads or hang /metrics. Concurrent scrapes
share one run (single-flight).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from prometheus_client.metrics_core import Metric as Family

from collectors.metricset import MetricSet
from obsbundle import __version__
from obsbundle.catalog import Catalog
from obsbundle.tenancy import SHARED, TenantResolver

log = logging.getLogger("obsbundle.exporter")


class CollectorError(Exception):
    """A failure with a short, secret-free code for `obsbundle_collector_last_error_info`."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


@runtime_checkable
class Collector(Protocol):
    """One unit of collection against one configured source (`server`)."""

    name: str
    server: str

    def collect(self, out: MetricSet, deadline: float) -> None:
        """Add samples to `out`; `deadline` is a time.monotonic() value to finish by."""


_DNS_MARKERS = ("could not translate host name", "name or service not known", "failed to resolve host",
                "temporary failure in name resolution", "nodename nor servname", "no address associated")
_REFUSED_MARKERS = ("connection refused",)


def error_code(exc: BaseException) -> str:
    """A short code for an exception; never its message, which may carry a host or user.

    Client libraries wrap socket errors (redis-py's ConnectionError, psycopg's OperationalError),
    so the cause chain and the message are looked at to tell a DNS failure from a refused port;
    only the code leaves this function."""
    if isinstance(exc, CollectorError):
        return exc.code
    cause = exc.__cause__ or exc.__context__
    if cause is not None and cause is not exc and isinstance(cause, OSError) and not isinstance(exc, OSError):
        wrapped = error_code(cause)
        if wrapped in ("dns", "connection_refused", "timeout"):
            return wrapped
    message = str(exc).lower()
    if not isinstance(exc, TimeoutError | socket.timeout):
        if any(marker in message for marker in _DNS_MARKERS):
            return "dns"
        if any(marker in message for marker in _REFUSED_MARKERS):
            return "connection_refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ConnectionError | OSError):
        return "network"
    name = type(exc).__name__
    for marker, code in (
        ("Timeout", "timeout"),
        ("QueryCanceled", "timeout"),
        ("Authentication", "auth_failed"),
        ("InvalidPassword", "auth_failed"),
        ("Permission", "permission_denied"),
        ("InsufficientPrivilege", "permission_denied"),
        ("Connection", "connection_failed"),
        ("Operational", "connection_failed"),
    ):
        if marker in name:
            return code
    return "error"


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
        self._states = [
            _CollectorState(
                c,
                budget=min(timeout, float(getattr(c, "budget", timeout) or timeout)),
                up_metric=getattr(c, "up_metric", None),
            )
            for c in collectors
        ]
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(collectors)), thread_name_prefix=exporter)
        self._flight_lock = threading.Lock()
        self._flight: Future[MetricSet] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for state in self._states:
            start = getattr(state.collector, "start", None)
            if callable(start):
                start()

    def close(self) -> None:
        for state in self._states:
            close = getattr(state.collector, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:  # closing must not mask shutdown
                    log.debug("closing %s failed: %s", state.collector.name, error_code(exc))
        self._pool.shutdown(wait=False, cancel_futures=True)

    def failing_collectors(self) -> list[str]:
        """`collector/server (code)` for each collector whose last run failed, for /-/ready."""
        return [
            f"{s.collector.name}/{s.collector.server} ({s.last_code})" for s in self._states if not s.last_success
        ]

    # -- scraping ----------------------------------------------------------------------------

    def scrape(self) -> list[Family]:
        """The families for one /metrics response; concurrent callers share one run."""
        return self._scrape_set().families()

    def scrape_text(self) -> bytes:
        """One /metrics body in text format 0.0.4, rendered without prometheus_client objects
        (MetricSet.render_text), which is most of the CPU saved at 10,000+ series."""
        return self._scrape_set().render_text()

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
            age = getattr(c, "data_age", None)
            out.add("obsbundle_collector_data_age_seconds", age() if callable(age) else 0.0, labels)
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


class BackgroundRefresh:
    """Runs `refresh()` every `interval` seconds in a thread and serves the last complete result.

    For sources whose collection is too slow or rate-limited for the scrape path (a Redis keyspace
    pass, Temporal visibility queries). `collect` costs a dict merge; `data_age` says how old the
    data is. A failed refresh keeps serving the previous result and re-raises on collect, so the
    up gauge drops while the last good figures stay visible.
    """

    def __init__(
        self,
        name: str,
        server: str,
        refresh: Callable[[MetricSet], None],
        catalog: Catalog,
        interval: float,
        up_metric: str | None = None,
        budget: float | None = None,
        retry_interval: float | None = None,
    ) -> None:
        self.name = name
        self.server = server
        self.up_metric = up_metric
        if budget is not None:
            self.budget = budget
        self._refresh = refresh
        self._catalog = catalog
        self.interval = interval
        self.retry_interval = interval if retry_interval is None else min(interval, retry_interval)
        self._lock = threading.Lock()
        self._snapshot: MetricSet | None = None
        self._snapshot_at: float | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0
        self.failures = 0
        self.stale_after = 3 * interval  # older data than this is still served but reported as failed

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"refresh-{self.name}", daemon=True)
            self._thread.start()

    def close(self, join_timeout: float = 0.0) -> None:
        """Stop the loop; a refresh in progress sees `_stop` set (long ones check it and bail out)."""
        self._stop.set()
        self._wake.set()
        if join_timeout and self._thread is not None:
            self._thread.join(timeout=join_timeout)

    def trigger(self) -> None:
        """Ask for a refresh now (tests; keyspace notifications)."""
        self._wake.set()

    def refresh_once(self) -> None:
        out = MetricSet(self._catalog, {"server": self.server})
        try:
            self._refresh(out)
        except Exception as exc:
            with self._lock:
                self._error = exc
                self.failures += 1
            raise
        with self._lock:
            self._snapshot, self._snapshot_at, self._error = out, time.monotonic(), None
            self.refreshes += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = self.interval
            try:
                self.refresh_once()
            except Exception as exc:
                log.debug("refresh %s/%s failed: %s", self.name, self.server, error_code(exc))
                wait = self.retry_interval
            self._wake.wait(wait)
            self._wake.clear()

    def data_age(self) -> float:
        with self._lock:
            return 0.0 if self._snapshot_at is None else time.monotonic() - self._snapshot_at

    def collect(self, out: MetricSet, deadline: float) -> None:
        with self._lock:
            snapshot, error = self._snapshot, self._error
        if snapshot is not None:
            out.merge(snapshot)
        if error is not None:
            raise error
        if snapshot is None:
            raise CollectorError("not_ready")
        if self.data_age() > self.stale_after:  # the refresh is stuck or starved
            raise CollectorError("stale")

