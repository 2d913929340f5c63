"""Outbound calls of the platform's services, from the app side (`collectors.app.clients` and
`collectors.app.dbclient`): model-provider HTTP calls and PostgreSQL/Redis client operations, by
tenant. The database time per tenant is measured in the client, so it is attributed even when every
tenant shares one database role (which pg_stat_statements cannot split). Like the other app metrics
they carry `tenant_id` (capped by `app.max_tenants_per_instrument`) and no `server` label.
"""

from obsbundle.catalog import PanelHint, declare

SOURCE = "clients"
# Why a provider call failed; anything unclassified is `other`.
ERROR_CLASSES = ("timeout", "connect", "http_5xx", "http_4xx", "other")
# Operation labels kept as they are; any other SQL verb or Redis command is `_other`.
SQL_OPERATIONS = ("SELECT", "INSERT", "UPDATE", "DELETE", "COPY", "BEGIN", "COMMIT", "ROLLBACK", "WITH", "CALL")
REDIS_OPERATIONS = (
    "GET", "SET", "MGET", "MSET", "DEL", "EXISTS", "EXPIRE", "INCR", "INCRBY", "HGET", "HSET", "HGETALL",
    "LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE", "SADD", "SMEMBERS", "ZADD", "ZRANGE", "PUBLISH", "EVALSHA",
)
OTHER_OPERATION = "_other"
PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

PROVIDER_REQUESTS = declare(
    "model_provider_requests_total", "counter",
    "Outbound HTTP calls to a model provider, by tenant, provider, model and status class (1xx-5xx, or none "
    "when no response arrived).",
    ("tenant_id", "provider", "model", "status_class"), source=SOURCE,
    panel=PanelHint(title="Model provider calls by provider"),
)
PROVIDER_DURATION = declare(
    "model_provider_request_duration_seconds", "histogram",
    "Time from sending a model-provider request to its response headers (or the failure), by tenant, "
    "provider and model.",
    ("tenant_id", "provider", "model"), source=SOURCE, unit="seconds", buckets=PROVIDER_BUCKETS,
    panel=PanelHint(title="Model provider p95 by provider"),
)
PROVIDER_ERRORS = declare(
    "model_provider_errors_total", "counter",
    "Model-provider calls that failed, by tenant, provider, model and error class (timeout, connect, "
    "http_5xx, http_4xx, other).",
    ("tenant_id", "provider", "model", "error"), source=SOURCE,
    panel=PanelHint(title="Model provider errors by class"),
)
DB_DURATION = declare(
    "db_client_operation_duration_seconds", "histogram",
    "Client-side time of one database operation (SQL statement or Redis command), by tenant, database system "
    "(postgresql, redis) and operation (the SQL verb or Redis command, else _other).",
    ("tenant_id", "db_system", "operation"), source=SOURCE, unit="seconds", buckets=DB_BUCKETS,
    panel=PanelHint(title="DB client time by tenant"),
)
