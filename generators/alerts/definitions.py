"""Every alert obsbundle generates, written against the metric catalog.

Thresholds and `for` durations come from config `thresholds.<key>` (one rule per configured
severity, same alertname, so Alertmanager can inhibit the warning under the critical); SLO
objectives and burn-rate windows from `slo`. `alerting.for_scale` multiplies every `for`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from generators.alerts import fixtures as fx
from generators.alerts import recording as rec
from generators.alerts.model import SEVERITIES, AlertRule, FixtureFn, anchor, duration, human
from obsbundle.config import parse_duration

TENANT = {"tenant_id": "acme"}
PG = {"server": "main", "tenant_id": "_shared"}
PG_TENANT = {"server": "main", "tenant_id": "acme"}
REDIS = {"server": "cache", "tenant_id": "_shared"}
TEMPORAL = {"server": "main", "tenant_id": "_shared"}
QUEUE = {"server": "main", "tenant_id": "acme", "task_queue": "tenant-acme-agents"}
HOST = {"instance": "db-1:9100"}
FILESYSTEM = {"instance": "db-1:9100", "mountpoint": "/var/lib/postgresql"}
TARGET = {"job": "postgres", "instance": "127.0.0.1:9187"}
PROBE = {"probe": "api-health", "tenant_id": "acme"}
COLLECTOR = {"exporter": "postgres", "server": "main", "collector": "activity"}
EXPORTER = {"exporter": "redis", "server": "cache"}

# component -> the dashboard (slug, as generators/dashboards names it) an alert links to
DASHBOARDS = {
    "app": "application", "slo": "slo-budget", "postgres": "postgresql", "redis": "redis",
    "temporal": "temporal", "node": "infrastructure", "probes": "application", "exporter": "infrastructure",
}
FS_FILTER = 'fstype!~"tmpfs|ramfs|squashfs|overlay|nsfs|fuse.*"'

WHO = "tenant {{ $labels.tenant_id }}"
VALUE = '{{ printf "%.3g" $value }}'


class Builder:
    """Collects rules; `threshold()` adds one rule per severity configured under a thresholds key."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.scale = float(config["alerting"].get("for_scale", 1))
        self.rules: list[AlertRule] = []

    def for_seconds(self, text: str) -> float:
        return parse_duration(text) * self.scale

    def threshold(self, key: str, name: str, component: str, value: str, op: str,
                  sample: Mapping[str, str], summary: str, description: str, title: str,
                  fixture: FixtureFn, unit: str = "", **kwargs: Any) -> None:
        spec = self.config["thresholds"][key]
        for severity in SEVERITIES:
            if severity not in spec:
                continue
            t = float(spec[severity])
            if "tenant_id" in sample and "$labels.tenant_id" not in description:
                description += " Tenant scope: {{ $labels.tenant_id }} (server-wide, all tenants)."
            text = (description.replace("<T>", human(t, unit)).replace("<FOR>", duration(self.for_seconds(spec["for"])))
                    .replace("<SEV>", severity))
            self.add(AlertRule(
                name=name, component=component, severity=severity, value=value, op=op, threshold=t,
                for_seconds=self.for_seconds(spec["for"]),
                summary=summary.replace("<T>", human(t, unit)), description=text,
                title=title, runbook=anchor(name), dashboard=DASHBOARDS[component], fixture=fixture,
                sample_labels=dict(sample), **kwargs,
            ))

    def add(self, rule: AlertRule) -> None:
        self.rules.append(rule)


def build_rules(config: Mapping[str, Any]) -> list[AlertRule]:
    b = Builder(config)
    for part in (_app, _slo, _postgres, _redis, _temporal, _node, _probes, _exporter):
        part(b)
    return b.rules


def _app(b: Builder) -> None:
    buckets = b.config["app"]["latency_buckets_seconds"]
    b.threshold(
        "error_ratio", "TenantErrorRatioHigh", "app", rec.error_ratio("5m"), ">", TENANT,
        f"High 5xx ratio for {WHO}",
        f"{WHO}: {VALUE} of API requests failed with 5xx over 5m (<SEV> above <T> for <FOR>).",
        "Tenant error ratio high",
        fx.status_ratio(rec.REQUESTS, "status_class", "5xx", "2xx",
                        extra={"route": "/v1/agents", "method": "POST"}),
        unit="ratio",
    )
    b.threshold(
        "latency_p95_seconds", "TenantLatencyP95High", "app", rec.latency_quantile("p95", "5m"), ">", TENANT,
        f"Slow API responses for {WHO}",
        f"{WHO}: p95 API latency is {VALUE}s over 5m (<SEV> above <T> for <FOR>).",
        "Tenant latency p95 high",
        fx.histogram_quantile(rec.DURATION, buckets, extra={"route": "/v1/agents", "method": "POST"}),
        unit="seconds",
    )


def _slo(b: Builder) -> None:
    slo = b.config["slo"]
    buckets = b.config["app"]["latency_buckets_seconds"]
    threshold = float(slo["latency"]["threshold_seconds"])
    kinds: list[tuple[str, str, Callable[[str], str], float, FixtureFn, str]] = []
    avail_budget = 1 - float(slo["availability"]["objective"])
    latency_budget = 1 - float(slo["latency"]["objective"])
    kinds.append((
        "TenantAvailabilityBudgetBurn", "availability", rec.error_ratio, avail_budget,
        fx.status_ratio(rec.REQUESTS, "status_class", "5xx", "2xx", factor=avail_budget,
                        extra={"route": "/v1/agents", "method": "GET"}),
        f"{slo['availability']['objective'] * 100:g}% of requests without a 5xx",
    ))
    kinds.append((
        "TenantLatencyBudgetBurn", "latency", rec.slow_ratio, latency_budget,
        fx.histogram_slow_share(rec.DURATION, buckets, threshold, factor=latency_budget),
        f"{slo['latency']['objective'] * 100:g}% of requests faster than {human(threshold, 'seconds')}",
    ))
    for name, kind, series, budget, fixture, objective in kinds:
        for window in slo["burn_rates"]:
            long, short, factor = window["long"], window["short"], float(window["factor"])
            b.add(AlertRule(
                name=name, component="slo", severity=window["severity"],
                value=f"{series(long)} / {fx.num(budget)}", op=">", threshold=factor,
                extra=f"and {series(short)} / {fx.num(budget)} > {{t}}",
                for_seconds=b.for_seconds(window["for"]),
                summary=f"{WHO} is burning its {kind} error budget {factor:g}x too fast",
                description=(f"{WHO}: the {kind} SLO ({objective} over {slo['window']}) is burning at "
                             f"{VALUE}x the sustainable rate over {long} and still above {factor:g}x over "
                             f"{short}; at this pace the {slo['window']} budget is gone in "
                             f"{_exhaustion(slo['window'], factor)}."),
                title=f"Tenant {kind} error budget burn", runbook=anchor(name), dashboard=DASHBOARDS["slo"],
                fixture=fixture, sample_labels=dict(TENANT),
                labels={"slo": kind, "long_window": long, "short_window": short},
            ))


def _exhaustion(window: str, factor: float) -> str:
    return human(parse_duration(window) / factor, "seconds")


def _postgres(b: Builder) -> None:
    b.threshold(
        "target_down", "PostgresDown", "postgres", "max by (server, tenant_id) (pg_up)", "<", PG,
        "PostgreSQL server {{ $labels.server }} is down (all tenants)",
        "The exporter cannot query PostgreSQL server {{ $labels.server }} ({{ $labels.tenant_id }}: "
        "every tenant on it is affected) for <FOR>.",
        "Postgres down", fx.gauge("pg_up"),
        fire_level=lambda t, f: 0, quiet_level=lambda t, f: 1,
    )
    b.threshold(
        "pg_connection_saturation_ratio", "PostgresConnectionSaturation", "postgres",
        'max by (server, tenant_id) (pg_connection_saturation_ratio{tenant_id="_shared"})', ">", PG,
        "PostgreSQL {{ $labels.server }} is running out of connections",
        f"PostgreSQL server {{{{ $labels.server }}}} uses {VALUE} of max_connections "
        "(<SEV> above <T> for <FOR>); new connections from every tenant will be refused.",
        "Postgres connection saturation", fx.gauge("pg_connection_saturation_ratio"), unit="ratio",
    )
    b.threshold(
        "pg_tenant_connection_share_ratio", "PostgresTenantConnectionShare", "postgres",
        "sum by (server, tenant_id) (pg_tenant_connections)"
        " / on (server) group_left () max by (server) (pg_max_connections)", ">", PG_TENANT,
        f"{WHO} holds a large share of PostgreSQL {{{{ $labels.server }}}} connections",
        f"{WHO} holds {VALUE} of max_connections on PostgreSQL server {{{{ $labels.server }}}} "
        "(<SEV> above <T> for <FOR>), starving the other tenants.",
        "Postgres tenant connection share",
        _tenant_share_fixture(), unit="ratio",
    )
    b.threshold(
        "pg_connection_saturation_ratio", "PgbouncerPoolSaturation", "postgres",
        "max by (server, tenant_id) (pgbouncer_pool_saturation_ratio)", ">", PG_TENANT,
        f"PgBouncer pool for {WHO} is saturated",
        f"PgBouncer pool for {WHO} on {{{{ $labels.server }}}} is {VALUE} used (<SEV> above <T> for <FOR>).",
        "Pgbouncer pool saturation", fx.gauge("pgbouncer_pool_saturation_ratio"), unit="ratio",
    )
    b.threshold(
        "pgbouncer_clients_waiting", "PgbouncerClientsWaiting", "postgres",
        "max by (server, tenant_id) (pgbouncer_clients_waiting)", ">=", PG_TENANT,
        f"Clients of {WHO} wait for a PgBouncer server connection",
        f"{VALUE} clients of {WHO} are waiting in PgBouncer on {{{{ $labels.server }}}} "
        "(<SEV> at <T> or more for <FOR>).",
        "Pgbouncer clients waiting", fx.gauge("pgbouncer_clients_waiting"),
    )
    b.threshold(
        "replication_lag_seconds", "PostgresReplicationLag", "postgres",
        "max by (server, tenant_id) (pg_replication_lag_seconds)", ">", PG,
        "PostgreSQL replica {{ $labels.server }} lags behind its primary",
        f"Replica {{{{ $labels.server }}}} replays {VALUE}s behind the primary "
        "(<SEV> above <T> for <FOR>); reads from it are stale for every tenant.",
        "Postgres replication lag", fx.gauge("pg_replication_lag_seconds"), unit="seconds",
    )
    b.threshold(
        "pg_deadlocks_per_minute", "PostgresDeadlocks", "postgres",
        "sum by (server, tenant_id) (rate(pg_database_deadlocks_total[10m])) * 60", ">", PG,
        "Deadlocks on PostgreSQL {{ $labels.server }}",
        f"PostgreSQL server {{{{ $labels.server }}}} resolves {VALUE} deadlocks per minute over 10m "
        "(<SEV> above <T> for <FOR>).",
        "Postgres deadlocks", fx.counter_rate("pg_database_deadlocks_total", scale=60,
                                              extra={"database": "app"}),
        unit="per_minute", fire_level=lambda t, f: t + 0.5, quiet_level=lambda t, f: max(t - 0.5, 0),
    )


def _tenant_share_fixture() -> FixtureFn:
    def build(level: float, labels: Mapping[str, str], minutes: int) -> fx.Fixture:
        max_conn = 100.0
        return fx.Fixture((
            fx.series_of("pg_tenant_connections", {**labels, "state": "active"},
                       fx.constant(level * max_conn, minutes)),
            fx.series_of("pg_max_connections", {"server": labels["server"], "tenant_id": "_shared"},
                       fx.constant(max_conn, minutes)),
        ), level)

    return build


def _redis(b: Builder) -> None:
    b.threshold(
        "target_down", "RedisDown", "redis", "max by (server, tenant_id) (redis_up)", "<", REDIS,
        "Redis {{ $labels.server }} is down (all tenants)",
        "The exporter cannot reach Redis {{ $labels.server }} ({{ $labels.tenant_id }}: every tenant's "
        "cache and queues on it are affected) for <FOR>.",
        "Redis down", fx.gauge("redis_up"), fire_level=lambda t, f: 0, quiet_level=lambda t, f: 1,
    )
    b.threshold(
        "redis_memory_saturation_ratio", "RedisMemoryNearMax", "redis",
        "max by (server, tenant_id) (redis_memory_saturation_ratio)", ">", REDIS,
        "Redis {{ $labels.server }} is close to maxmemory",
        f"Redis {{{{ $labels.server }}}} uses {VALUE} of maxmemory (<SEV> above <T> for <FOR>); "
        "past it Redis evicts or refuses writes for every tenant.",
        "Redis memory near max", fx.gauge("redis_memory_saturation_ratio"), unit="ratio",
    )
    b.threshold(
        "redis_evictions_per_second", "RedisEvictions", "redis",
        "sum by (server, tenant_id) (rate(redis_evicted_keys_total[5m]))", ">", REDIS,
        "Redis {{ $labels.server }} evicts keys",
        f"Redis {{{{ $labels.server }}}} evicts {VALUE} keys/s over 5m (<SEV> above <T> for <FOR>).",
        "Redis evictions", fx.counter_rate("redis_evicted_keys_total"), unit="per_second",
    )


def _temporal(b: Builder) -> None:
    b.threshold(
        "target_down", "TemporalDown", "temporal", "max by (server, tenant_id) (temporal_up)", "<", TEMPORAL,
        "Temporal {{ $labels.server }} is unreachable (all tenants)",
        "The exporter cannot reach the Temporal frontend {{ $labels.server }} ({{ $labels.tenant_id }}: "
        "every tenant's workflows are affected) for <FOR>.",
        "Temporal down", fx.gauge("temporal_up"), fire_level=lambda t, f: 0, quiet_level=lambda t, f: 1,
    )
    b.threshold(
        "temporal_backlog_age_seconds", "TemporalBacklogAge", "temporal",
        "max by (server, tenant_id, task_queue) (temporal_tenant_task_queue_backlog_age_seconds)", ">", QUEUE,
        f"Tasks of {WHO} wait too long in {{{{ $labels.task_queue }}}}",
        f"The oldest task of {WHO} in task queue {{{{ $labels.task_queue }}}} has waited {VALUE}s "
        "(<SEV> above <T> for <FOR>): workers are missing or too slow.",
        "Temporal backlog age", fx.gauge("temporal_tenant_task_queue_backlog_age_seconds",
                                         extra={"task_queue_type": "workflow"}), unit="seconds",
    )
    b.threshold(
        "temporal_queue_without_workers", "TemporalQueueWithoutWorkers", "temporal",
        "(sum by (server, tenant_id, task_queue) (temporal_tenant_task_queue_backlog)"
        " unless on (server, tenant_id, task_queue)"
        " (sum by (server, tenant_id, task_queue) (temporal_tenant_task_queue_pollers) > 0))",
        ">", QUEUE,
        f"No worker polls {{{{ $labels.task_queue }}}} of {WHO}",
        f"{VALUE} tasks of {WHO} wait in task queue {{{{ $labels.task_queue }}}} and no worker has polled it "
        "(<SEV> for <FOR>): the tenant's workers are down or deployed to the wrong queue.",
        "Temporal queue without workers",
        fx.combine(fx.gauge("temporal_tenant_task_queue_backlog", extra={"task_queue_type": "workflow"}),
                   fx.gauge("temporal_tenant_task_queue_pollers", extra={"task_queue_type": "workflow"},
                            transform=lambda _: 0)),
        fire_level=lambda t, f: t + 5, quiet_level=lambda t, f: t,
    )
    b.threshold(
        "temporal_backlog_growth_per_minute", "TemporalBacklogGrowing", "temporal",
        "sum by (server, tenant_id, task_queue) (deriv(temporal_tenant_task_queue_backlog[10m])) * 60",
        ">", QUEUE,
        f"Backlog of {WHO} keeps growing in {{{{ $labels.task_queue }}}}",
        f"The backlog of {WHO} in task queue {{{{ $labels.task_queue }}}} grows by {VALUE} tasks per "
        "minute (<SEV> above <T> for <FOR>): add workers.",
        "Temporal backlog growing", fx.linear_growth("temporal_tenant_task_queue_backlog",
                                                      extra={"task_queue_type": "activity"}),
        unit="per_minute",
    )
    b.threshold(
        "workflow_failure_ratio", "TemporalWorkflowFailureRatio", "temporal",
        'sum by (server, tenant_id) (temporal_tenant_workflows_closed{status=~"failed|timed_out|terminated"})'
        " / sum by (server, tenant_id) (temporal_tenant_workflows_closed)", ">", PG_TENANT,
        f"Workflows of {WHO} fail",
        f"{VALUE} of the workflows of {WHO} that closed recently failed, timed out or were terminated "
        "(<SEV> above <T> for <FOR>).",
        "Temporal workflow failure ratio",
        fx.gauge_status_ratio("temporal_tenant_workflows_closed", "status", "failed", "completed"), unit="ratio",
    )


def _node(b: Builder) -> None:
    avail = f"node_filesystem_avail_bytes{{{FS_FILTER}}}"
    size = f"node_filesystem_size_bytes{{{FS_FILTER}}}"
    b.threshold(
        "disk_free_ratio", "HostDiskSpaceLow", "node",
        f"min by (instance, mountpoint) ({avail} / {size})", "<", FILESYSTEM,
        "Disk {{ $labels.mountpoint }} on {{ $labels.instance }} is filling up (all tenants on the host)",
        f"Only {VALUE} of {{{{ $labels.mountpoint }}}} on {{{{ $labels.instance }}}} is free "
        "(<SEV> below <T> for <FOR>); every tenant on this host is affected.",
        "Host disk space low",
        fx.gauge_pair("node_filesystem_avail_bytes", "node_filesystem_size_bytes",
                      extra={"device": "/dev/sda1", "fstype": "ext4"}),
        unit="ratio",
    )
    b.threshold(
        "disk_fill_hours", "HostDiskWillFill", "node",
        f"min by (instance, mountpoint) ({avail} / clamp_min(-deriv({avail}[6h]), 1e-09)) / 3600", "<",
        FILESYSTEM,
        "Disk {{ $labels.mountpoint }} on {{ $labels.instance }} will be full soon (all tenants on the host)",
        "At the rate of the last 6h, {{ $labels.mountpoint }} on {{ $labels.instance }} is full "
        f"in {VALUE} hours (<SEV> below <T> for <FOR>).",
        "Host disk will fill",
        fx.linear_fill("node_filesystem_avail_bytes", "node_filesystem_size_bytes",
                       extra={"device": "/dev/sda1", "fstype": "ext4"}),
        unit="hours",
        # the hours left shrink while the alert waits out `for`: fire deep enough under the threshold
        fire_level=lambda t, f: t * 0.9 - f / 3600, quiet_level=lambda t, f: t * 1.1,
    )
    b.threshold(
        "memory_used_ratio", "HostMemoryHigh", "node",
        "max by (instance) (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)", ">", HOST,
        "Memory on {{ $labels.instance }} is nearly exhausted (all tenants on the host)",
        f"{{{{ $labels.instance }}}} uses {VALUE} of its memory (<SEV> above <T> for <FOR>); "
        "every tenant on this host risks the OOM killer.",
        "Host memory high",
        fx.gauge_pair("node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes", used=True),
        unit="ratio",
    )
    b.threshold(
        "cpu_used_ratio", "HostCpuHigh", "node",
        'max by (instance) (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))', ">", HOST,
        "CPU on {{ $labels.instance }} is busy (all tenants on the host): scale out",
        f"{{{{ $labels.instance }}}} CPUs are {VALUE} busy over 5m (<SEV> above <T> for <FOR>); "
        "this is the scaling trigger.",
        "Host CPU high", fx.cpu_busy(), unit="ratio",
    )


def _probes(b: Builder) -> None:
    b.threshold(
        "probe_failure", "ProbeFailing", "probes", "min by (probe, tenant_id) (probe_success)", "<", PROBE,
        "Uptime probe {{ $labels.probe }} fails for tenant {{ $labels.tenant_id }}",
        "The uptime check {{ $labels.probe }} of tenant {{ $labels.tenant_id }} has failed for <FOR>; "
        "see probe_failure_info for the reason.",
        "Probe failing", fx.gauge("probe_success"), fire_level=lambda t, f: 0, quiet_level=lambda t, f: 1,
    )
    b.threshold(
        "cert_expiry_days", "ProbeCertificateExpiry", "probes",
        "min by (probe, tenant_id) (probe_tls_cert_expiry_days)", "<", PROBE,
        "TLS certificate of {{ $labels.probe }} expires soon (tenant {{ $labels.tenant_id }})",
        f"The certificate served to probe {{{{ $labels.probe }}}} of tenant {{{{ $labels.tenant_id }}}} "
        f"expires in {VALUE} days (<SEV> below <T>).",
        "Probe certificate expiry", fx.gauge("probe_tls_cert_expiry_days"), unit="days",
    )


def _exporter(b: Builder) -> None:
    b.threshold(
        "target_down", "TargetDown", "exporter", "min by (job, instance) (up)", "<", TARGET,
        "Prometheus cannot scrape {{ $labels.job }} target {{ $labels.instance }}",
        "Scrapes of {{ $labels.instance }} (job {{ $labels.job }}) have failed for <FOR>: "
        "its metrics and alerts are blind for every tenant.",
        "Target down", fx.gauge("up"), fire_level=lambda t, f: 0, quiet_level=lambda t, f: 1,
    )
    b.threshold(
        "collector_failing", "ObsbundleCollectorFailing", "exporter",
        "min by (exporter, server, collector) (obsbundle_collector_success)", "<", COLLECTOR,
        "Collector {{ $labels.collector }} of the {{ $labels.exporter }} exporter fails",
        "The {{ $labels.collector }} collector of the {{ $labels.exporter }} exporter for server "
        "{{ $labels.server }} has failed or overrun its budget for <FOR>; see "
        "obsbundle_collector_last_error_info for its error code. Its figures for every tenant are missing.",
        "Collector failing", fx.gauge("obsbundle_collector_success"),
        fire_level=lambda t, f: 0, quiet_level=lambda t, f: 1,
    )
    b.threshold(
        "tenant_overflow_per_minute", "TenantCardinalityOverflow", "exporter",
        "sum by (exporter, server) (rate(obsbundle_tenants_overflowed_total[10m])) * 60", ">", EXPORTER,
        "The {{ $labels.exporter }} exporter hit tenancy.max_tenants",
        f"The {{{{ $labels.exporter }}}} exporter for {{{{ $labels.server }}}} attributes {VALUE} names per "
        "minute to tenant_id=_overflow (<SEV>, for <FOR>): tenants past the cap are lumped together, not "
        "all tenants are told apart. Raise tenancy.max_tenants or fix the tenancy rules.",
        "Tenant cardinality overflow", fx.counter_rate("obsbundle_tenants_overflowed_total", scale=60),
        unit="per_minute", fire_level=lambda t, f: t + 1, quiet_level=lambda t, f: 0,
    )
