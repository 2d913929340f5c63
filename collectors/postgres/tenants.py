"""Schema -> tenant_id: the optional `tenancy.postgres.tenants_table` query wins, then the schema rule."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from collectors.postgres.session import Session
from collectors.runtime import CollectorError
from obsbundle.tenancy import UNASSIGNED, TenantResolver, normalize

# Schemas that are PostgreSQL's own and never a tenant's (toast and temp schemas included).
USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'"
)


class SchemaTenants:
    """Resolves schema names to tenant ids for one server, one scrape at a time."""

    def __init__(self, resolver: TenantResolver, tenants_table: str | None = None) -> None:
        self.resolver = resolver
        self.tenants_table = tenants_table
        # schema -> tenant by rule; safe to keep because admission under the cap is sticky.
        self._by_rule: dict[str, str | None] = {}

    def load(self, session: Session, deadline: float) -> dict[str, str]:
        """schema -> tenant id from the tenants_table query (empty when none is configured)."""
        if not self.tenants_table:
            return {}
        try:
            rows = session.query(deadline, self.tenants_table)
        except psycopg.Error:
            raise CollectorError("tenants_table_failed") from None
        try:
            return {str(schema): normalize(str(tenant)) for tenant, schema, *_ in rows if tenant and schema}
        except ValueError:  # fewer than two columns
            raise CollectorError("tenants_table_shape") from None

    def tenants(self, schemas: Iterable[str], table: dict[str, str]) -> list[str]:
        """tenant() for every schema of a scrape, admitted in one call (one lock, one clock read)."""
        by_rule = self._by_rule
        found: list[str | None] = []
        for schema in schemas:
            listed = table.get(schema)
            if listed is None:
                if schema not in by_rule:
                    by_rule[schema] = self.resolver.match("schema", schema)
                listed = by_rule[schema]
            found.append(listed)
        admitted = iter(self.resolver.admit_all(t for t in found if t is not None))
        return [UNASSIGNED if t is None else next(admitted) for t in found]

    def tenant(self, schema: str, table: dict[str, str]) -> str:
        listed = table.get(schema)
        if listed is not None:
            return self.resolver.admit(listed)
        if schema not in self._by_rule:  # cache the regex work; admission runs every time (seen, cap)
            self._by_rule[schema] = self.resolver.match("schema", schema)
        tenant = self._by_rule[schema]
        return UNASSIGNED if tenant is None else self.resolver.admit(tenant)
