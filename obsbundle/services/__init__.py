"""Throwaway real services for tests, benchmarks and `obsbundle demo`: PostgreSQL (and a standby),
PgBouncer, Redis, Prometheus, Alertmanager, Temporal, node_exporter, uvicorn apps and obsbundle
exporter processes. Each starts on a free loopback port in its own temp dir and is stopped by its
owner. A service already on the machine is used only where a test's env var names it
(OBSBUNDLE_TEST_PG_DSN, OBSBUNDLE_TEST_REDIS_URL, OBSBUNDLE_TEST_TEMPORAL_ADDRESS).

One module per service; this package re-exports all of them, so `from obsbundle.services import X`
works for every name.
"""

from obsbundle.services.alertmanager import AlertmanagerServer
from obsbundle.services.cli import run_cli
from obsbundle.services.debian_exporters import DebianExporter, NodeExporter
from obsbundle.services.exporter import ExporterProcess
from obsbundle.services.http_target import ExpositionServer, TargetServer, self_signed_cert
from obsbundle.services.metrics_text import Samples, by_tenant, parse_metrics, sample_sum
from obsbundle.services.notification_sink import Notification, NotificationSink
from obsbundle.services.pgbouncer import PgBouncerServer
from obsbundle.services.postgres import PostgresServer, ReplicaServer, pg_bindir
from obsbundle.services.process import (
    SERVICE_USER,
    VENV_BIN,
    Loopback,
    Service,
    as_service_user,
    free_port,
    owned_tempdir,
    port_open,
    running,
    wait_for,
    which,
)
from obsbundle.services.prometheus import PrometheusAPI, PrometheusServer
from obsbundle.services.redis import RedisServer
from obsbundle.services.temporal import TemporalServer
from obsbundle.services.uvicorn import UvicornService, UvicornThread
from obsbundle.services.victoriametrics import PrometheusAgent, VictoriaMetricsServer, VmalertServer

# The old module's private helpers, for code written against the former `obsbundle.services`.
_pg_bindir, _as_service_user, _owned_tempdir = pg_bindir, as_service_user, owned_tempdir

__all__ = [
    "SERVICE_USER",
    "VENV_BIN",
    "AlertmanagerServer",
    "DebianExporter",
    "ExporterProcess",
    "ExpositionServer",
    "Loopback",
    "NodeExporter",
    "Notification",
    "NotificationSink",
    "PgBouncerServer",
    "PostgresServer",
    "PrometheusAPI",
    "PrometheusAgent",
    "PrometheusServer",
    "RedisServer",
    "ReplicaServer",
    "Samples",
    "Service",
    "TargetServer",
    "TemporalServer",
    "UvicornService",
    "UvicornThread",
    "VictoriaMetricsServer",
    "VmalertServer",
    "as_service_user",
    "by_tenant",
    "free_port",
    "owned_tempdir",
    "parse_metrics",
    "pg_bindir",
    "port_open",
    "run_cli",
    "running",
    "sample_sum",
    "self_signed_cert",
    "wait_for",
    "which",
]
