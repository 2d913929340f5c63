"""What every PostgreSQL collector shares: its own session, its server name and its budget."""

from __future__ import annotations

from collectors.metricset import MetricSet
from collectors.postgres.session import ConnectionSettings, Session


class PgCollector:
    """Base for one unit of collection against one server; subclasses implement `collect`."""

    name = "postgres"
    budget: float | None = None  # seconds; the runner caps it at the scrape timeout
    up_metric: str | None = None
    simple_protocol = False

    def __init__(self, server: str, settings: ConnectionSettings) -> None:
        self.server = server
        self.session = Session(settings, simple_protocol=self.simple_protocol)

    def collect(self, out: MetricSet, deadline: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        self.session.close()
