"""Background refresh: collection too slow or rate-limited for the scrape path, served from memory."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from collectors.metricset import MetricSet, Rendered
from collectors.runtime.contract import Collector
from collectors.runtime.errors import CollectorError, error_code
from obsbundle.catalog import Catalog

log = logging.getLogger("obsbundle.exporter")

__all__ = ["BackgroundRefresh"]


class BackgroundRefresh(Collector):
    """Runs `refresh()` every `interval` seconds in a thread and serves the last complete result.

    For sources whose collection is too slow or rate-limited for the scrape path (a Redis keyspace
    pass, Temporal visibility queries). A completed refresh is rendered to text once, in the
    refresh thread, and `collect` attaches that `Rendered` pass to the scrape's set: a scrape
    copies the pass's bytes, whatever its size (collectors/runtime/exposition.py). `data_age` says
    how old the data is. A failed refresh keeps serving the previous result and re-raises on
    collect, so the up gauge drops while the last good figures stay visible.
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
        self.stale_after = 3 * interval  # older data than this is still served but reported as failed
        self.last_duration = 0.0  # of the last completed refresh: a pass longer than the interval is
        # not stale for taking that long (10M keys take minutes with a 60 s interval)
        self._lock = threading.Lock()
        self._snapshot: Rendered | None = None
        self._snapshot_at: float | None = None
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.refreshes = 0
        self.failures = 0
        # called in the refresh thread after each completed pass (the runner pre-renders its block)
        self.on_refresh: list[Callable[[], None]] = []

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
        started = time.monotonic()
        try:
            self._refresh(out)
        except Exception as exc:
            with self._lock:
                self._error = exc
                self.failures += 1
            raise
        rendered = out.rendered()  # once per pass, here, never on the scrape path
        with self._lock:
            self._snapshot, self._snapshot_at, self._error = rendered, time.monotonic(), None
            self.last_duration = self._snapshot_at - started
            self.refreshes += 1
        for hook in self.on_refresh:
            try:
                hook()
            except Exception as exc:  # a hook must never fail the pass it follows
                log.debug("after refresh %s/%s: %s", self.name, self.server, error_code(exc))

    def rendered(self) -> Rendered | None:
        """The last complete pass as served (None before the first)."""
        with self._lock:
            return self._snapshot

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
            out.attach(snapshot)
        if error is not None:
            raise error
        if snapshot is None:
            raise CollectorError("not_ready")
        if self.data_age() > self.stale_after + 2 * self.last_duration:  # the refresh is stuck or starved
            raise CollectorError("stale")

