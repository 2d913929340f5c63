"""The collector contract: what the scrape runner may rely on, stated once instead of probed.

A collector is one unit of collection against one configured source (`server`). The runner calls
`start()` once, `collect(out, deadline)` per scrape inside `budget` seconds (capped at the scrape
timeout), folds its success into the source's `up_metric` gauge, reports `data_age()` and calls
`close()` at shutdown. Only `collect` has no sensible default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from collectors.metricset import MetricSet

__all__ = ["Collector"]


class Collector(ABC):
    """Base of every collector; subclasses set `name` and `server` and implement `collect`."""

    name: str
    server: str
    budget: float | None = None  # seconds for one collect; None: the whole scrape timeout
    up_metric: str | None = None  # the source's `*_up` gauge this collector's success drives

    @abstractmethod
    def collect(self, out: MetricSet, deadline: float) -> None:
        """Add samples to `out`; `deadline` is a time.monotonic() value to finish by."""

    def start(self) -> None:  # noqa: B027 - a default, not an abstract hook
        """Start background work (a refresh thread); on-scrape collectors have none."""

    def close(self) -> None:  # noqa: B027 - a default, not an abstract hook
        """Release connections and threads; called once at shutdown."""

    def data_age(self) -> float:
        """Seconds since the data served was read: 0 for on-scrape collectors."""
        return 0.0
