"""What every PostgreSQL collector shares: its own session, its server name and its budget."""

from __future__ import annotations

from collectors.postgres.session import ConnectionSettings, Session
from collectors.runtime import Collector


class PgCollector(Collector):
    """Base for one unit of collection against one server; subclasses implement `collect`."""

    name = "postgres"
    simple_protocol = False

    def __init__(self, server: str, settings: ConnectionSettings) -> None:
        self.server = server
        self.session = Session(settings, simple_protocol=self.simple_protocol)

    def close(self) -> None:
        self.session.close()
