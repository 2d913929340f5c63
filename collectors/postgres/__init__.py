"""PostgreSQL and PgBouncer collectors for `obsbundle exporter postgres`.

Each collector owns one connection (`session.Session`) and one concern: `server` (pg_up and the
_shared figures), `schemas` (per-tenant table statistics), `sizes` (schema and database sizes,
refreshed in the background), `activity` (per-tenant sessions), `statements` (pg_stat_statements),
one `custom:<name>` per custom query, and `pgbouncer` when a PgBouncer admin DSN is configured.
"""
