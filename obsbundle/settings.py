"""Typed views of the validated config: one frozen dataclass per section of the schema.

The JSON Schema (`obsbundle/schema/*.yaml`) is the one place a default lives: `config.validate`
fills every `default` into the document, and these classes are built from that document, so no
field here has a default of its own. A field typed `X | None` is one the schema leaves optional;
`Seconds` fields hold durations ("30s", "5m") already converted to seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NewType, TypeVar

import dacite

from obsbundle import config

Seconds = NewType("Seconds", float)
T = TypeVar("T")

_DACITE = dacite.Config(
    type_hooks={Seconds: lambda v: Seconds(config.parse_duration(v)), float: float},
    cast=[tuple],
    strict=True,
)


def typed(cls: type[T], data: Mapping[str, Any]) -> T:
    """A section object from its validated (defaults filled) mapping."""
    return dacite.from_dict(cls, dict(data), _DACITE)


# -- tenancy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresTenancy:
    schema: str | None
    role: str | None
    application_name: str | None
    database: str | None
    tenants_table: str | None


@dataclass(frozen=True)
class RedisTenancy:
    key: str | None
    client_name: str | None
    user: str | None


@dataclass(frozen=True)
class TemporalTenancy:
    namespace: str | None
    task_queue: str | None
    search_attribute: str | None


@dataclass(frozen=True)
class Tenancy:
    label: str
    max_tenants: int
    max_volatile_tenants: int | None
    release_after: Seconds
    postgres: PostgresTenancy
    redis: RedisTenancy
    temporal: TemporalTenancy

    def rules(self, source: str) -> dict[str, str]:
        """The regex rules (kind -> pattern) of one source kind; disabled (null) rules left out."""
        section = {"postgres": self.postgres, "redis": self.redis, "temporal": self.temporal}[source]
        return {
            kind: pattern for kind, pattern in vars(section).items()
            if pattern and kind not in ("tenants_table", "search_attribute")  # not regexes
        }


# -- exporter ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exporter:
    scrape_timeout: Seconds
    listen_addresses: dict[str, str]


# -- sources -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgBouncerSource:
    dsn: str
    password_file: str | None


@dataclass(frozen=True)
class CustomMetric:
    column: str
    name: str
    type: str
    unit: str
    help: str


@dataclass(frozen=True)
class CustomQuery:
    name: str
    sql: str
    tenant_column: str
    help: str | None
    metrics: tuple[CustomMetric, ...]


@dataclass(frozen=True)
class PostgresSource:
    name: str
    dsn: str
    password_file: str | None
    connect_timeout: Seconds
    statement_timeout: Seconds
    pg_stat_statements: bool
    size_interval: Seconds
    pgbouncer: PgBouncerSource | None
    custom_queries: tuple[CustomQuery, ...]


@dataclass(frozen=True)
class RedisScan:
    count: int
    batch: int
    interval: Seconds
    memory_sample_ratio: float
    memory_min_samples: int
    slice: Seconds
    rest: Seconds
    busy_latency: Seconds
    busy_pause: Seconds


@dataclass(frozen=True)
class RedisSource:
    name: str
    url: str
    username: str | None
    password_file: str | None
    password_env: str
    tls_ca_file: str | None
    tls_cert_file: str | None
    tls_key_file: str | None
    tls_insecure_skip_verify: bool
    socket_timeout: Seconds
    scan: RedisScan


@dataclass(frozen=True)
class TemporalSource:
    name: str
    address: str
    tenancy: str
    namespaces: tuple[str, ...]
    task_queues: tuple[str, ...]
    api_key_file: str | None
    tls: bool
    refresh_interval: Seconds
    closed_window: Seconds
    visibility_rps: float
    api_rps: float
    concurrency: int
    call_timeout: Seconds
    discovery_page_size: int
    discovery_max_pages: int
    max_task_queues: int
    metrics_url: str | None


@dataclass(frozen=True)
class ProbeSource:
    name: str
    url: str
    tenant: str | None
    method: str
    interval: Seconds
    timeout: Seconds
    expect_status: tuple[int, ...]
    follow_redirects: bool
    tls_ca_file: str | None


@dataclass(frozen=True)
class Sources:
    postgres: tuple[PostgresSource, ...]
    redis: tuple[RedisSource, ...]
    temporal: tuple[TemporalSource, ...]
    probes: tuple[ProbeSource, ...]


# -- the whole file ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The typed sections collectors and exporters read. `document` keeps the validated mapping
    for the sections still read as mappings (alerting, thresholds, slo, dashboards, app)."""

    tenancy: Tenancy
    exporter: Exporter
    sources: Sources
    document: Mapping[str, Any]

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Settings:
        """From a document `config.parse`/`config.load` returned (validated, defaults filled)."""
        return cls(
            tenancy=typed(Tenancy, document["tenancy"]),
            exporter=typed(Exporter, document["exporter"]),
            sources=typed(Sources, document["sources"]),
            document=document,
        )


def settings(document: Mapping[str, Any] | Settings) -> Settings:
    """Typed settings of a loaded config; passes Settings through (callers may hold either)."""
    return document if isinstance(document, Settings) else Settings.from_document(document)


def section(cls: type[T], schema: str, value: Mapping[str, Any]) -> T:
    """One entry validated against its schema file, e.g. `section(ProbeSource, "source-probes.yaml",
    {"name": ..., "url": ...})`: the schema fills the defaults, so tests and tools that build one
    source never restate them."""
    document = config.validate_section(schema.removesuffix(".yaml"), [dict(value)])
    return typed(cls, document[0])
