"""User-defined per-tenant queries (`sources.postgres[].custom_queries`), each its own collector.

One collector per query so a broken query fails alone (its own error code and budget) while the
built-in figures and the other queries keep flowing. Rows for the same tenant are summed.
"""

from __future__ import annotations

import psycopg

from collectors.metricset import MetricSet
from collectors.postgres.base import PgCollector
from collectors.postgres.session import ConnectionSettings
from collectors.runtime import CollectorError
from obsbundle.catalog.postgres_custom import custom_metric_name
from obsbundle.settings import CustomQuery
from obsbundle.tenancy import UNASSIGNED, TenantResolver, normalize


class CustomQueryCollector(PgCollector):
    budget = 8.0

    def __init__(
        self, server: str, settings: ConnectionSettings, resolver: TenantResolver, query: CustomQuery
    ) -> None:
        super().__init__(server, settings)
        self.name = f"custom:{query.name}"
        self.resolver = resolver
        self.sql = query.sql
        self.tenant_column = query.tenant_column
        self.metrics = [
            (column.column, custom_metric_name(query.name, column.name, column.type)) for column in query.metrics
        ]

    def collect(self, out: MetricSet, deadline: float) -> None:
        out.declare_empty(name for _, name in self.metrics)
        try:
            columns, rows = self.session.run(deadline, self.sql)
        except psycopg.errors.QueryCanceled:
            raise CollectorError("timeout") from None
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError):
                raise
            raise CollectorError("query_failed") from None
        if not columns:
            raise CollectorError("no_result")
        index = {name: i for i, name in enumerate(columns)}
        missing = [c for c in (self.tenant_column, *(c for c, _ in self.metrics)) if c not in index]
        if missing:
            raise CollectorError("missing_column")
        for row in rows:
            raw = row[index[self.tenant_column]]
            tenant = self.resolver.admit(normalize(str(raw))) if raw not in (None, "") else UNASSIGNED
            for column, name in self.metrics:
                value = row[index[column]]
                try:
                    out.add(name, None if value is None else float(value), {"tenant_id": tenant})
                except (TypeError, ValueError):
                    raise CollectorError("non_numeric") from None
