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
from generators.alerts.model import SEVERITIES, AlertRule, Fixture, FixtureFn, anchor, duration, human, num
from obsbundle.config import parse_duration
from obsbundle.tenancy import RESERVED

TENANT = {"tenant_id": "acme"}
PG = {"server": "main", "tenant_id": "_shared"}
PG_TENANT = {"server": "main", "tenant_id": "acme"}
REDIS = {"server": "cache", "tenant_id": "_shared"}
TEMPORAL = {"server": "main", "tenant_id": "_shared"}
QUEUE = {"server": "main", "tenant_id": "acme", "task_queue": "tenant-acme-agents"}
WORKER_QUEUE = {"tenant_id": "acme", "task_queue": "tenant-acme-agents"}  # worker series have no `server`
WORKER_EXTRA = {"namespace": "agents", "task_type": "activity"}
WORKER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
HOST = {"instance": "db-1:9100"}
FILESYSTEM = {"instance": "db-1:9100", "mountpoint": "/var/lib/postgresql"}
PROBE = {"probe": "api-health", "tenant_id": "acme"}
COLLECTOR = {"exporter": "postgres", "server": "main", "collector": "activity"}
EXPORTER = {"exporter": "redis", "server": "cache"}

# A tenant alert never fires for a pseudo-tenant (_shared, _unassigned, _overflow): add to its selectors.
REAL = 'tenant_id!~"' + "|".join(sorted(RESERVED)) + '"'
PSEUDO = 'tenant_id=~"' + "|".join(sorted(RESERVED - {"_shared"})) + '"'
CONTAINER = {"namespace": "platform", "pod": "api-7d9f", "container": "api"}
IFACE = {"instance": "db-1:9100", "device": "eth0"}
JOB = {"job": "postgres"}

# component -> the dashboard (slug, as generators/dashboards names it) an alert links to
DASHBOARDS = {
    "app": "application", "slo": "slo-budget", "postgres": "postgresql", "redis": "redis",
    "temporal": "temporal", "node": "infrastructure", "probes": "application", "exporter": "infrastructure",
    "platform": "application", "kubernetes": "infrastructure", "budget": "cost",
}
FS_FILTER = 'fstype!~"tmpfs|ramfs|squashfs|overlay|nsfs|fuse.*"'

WHO = "tenant {{ $labels.tenant_id }}"
VALUE = '{{ printf "%.3g" $value }}'


class Builder:
    """Collects rules. Each pattern takes keyword arguments only and adds one rule per severity
    configured under its thresholds key (same alertname, so the critical inhibits the warning)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.scale = float(config["alerting"].get("for_scale", 1))
        self.rules: list[AlertRule] = []

    def for_seconds(self, text: str) -> float:
        return parse_duration(text) * self.scale

    def minimum(self, key: str) -> float:
        return float(self.config["slo"][key])

    def threshold(self, *, key: str, name: str, component: str, value: str, op: str,
                  sample: Mapping[str, str], summary: str, description: str, title: str,
                  fixture: FixtureFn, unit: str = "", runbook: str = "", **kwargs: Any) -> None:
        """`value op threshold` for each severity under `thresholds.<key>`."""
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
                title=title, runbook=runbook or anchor(name), dashboard=DASHBOARDS[component], fixture=fixture,
                sample_labels=dict(sample), **kwargs,
            ))

    def ratio(self, *, traffic: str, minimum: str, low_traffic: FixtureFn, **kwargs: Any) -> None:
        """A threshold on a ratio that only fires with `traffic >= slo.<minimum>` over the same window,
        so a tenant whose single request failed never pages."""
        by = ", ".join(kwargs["sample"])
        guard = f"and on ({by}) {traffic} >= {num(self.minimum(minimum))}"
        self.threshold(guard=guard, low_traffic=low_traffic, **kwargs)

    def down(self, *, key: str, name: str, component: str, metric: str, sample: Mapping[str, str],
             summary: str, description: str, title: str, extra_series: FixtureFn | None = None,
             matcher: str = "", **kwargs: Any) -> None:
        """A 0/1 health gauge (`*_up`, `*_success`) below 1."""
        by = ", ".join(sample)
        metric_selector = f"{metric}{{{matcher}}}" if matcher else metric
        fixture = fx.gauge(metric) if extra_series is None else fx.combine(fx.gauge(metric), extra_series)
        self.threshold(key=key, name=name, component=component, value=f"min by ({by}) ({metric_selector})", op="<",
                       sample=sample, summary=summary, description=description, title=title, fixture=fixture,
                       fire_level=lambda t, f: 0, quiet_level=lambda t, f: 1, **kwargs)

    def absent(self, *, name: str, component: str, metric: str, what: str) -> None:
        """No series of `metric` at all: the scrape job is gone or the exporter never started."""
        self.threshold(
            key="exporter_absent", name=name, component=component, value=f"absent({metric})", op=">=",
            sample={}, summary=f"No {what} metrics reach Prometheus (all tenants blind)",
            description=(f"Prometheus has no {metric} series for <FOR>: the {what} scrape job is missing, "
                         "every target of it is gone, or relabelling drops it. Every alert on it is blind "
                         "for every tenant."),
            title=f"{what} metrics absent", fixture=fx.absent(metric), runbook="metricsabsent",
            fire_level=lambda t, f: 1, quiet_level=lambda t, f: 0, resolves=False,
            notes={"tenants_affected": "all tenants (monitoring blind)"},
        )

    def burn_rate(self, *, name: str, kind: str, series: Callable[[str], str], budget: float, fixture: FixtureFn,
                  low_traffic: FixtureFn, objective: str) -> None:
        """Multi-window multi-burn-rate (SRE workbook): one rule per severity, the tiers of that severity
        joined with `or`, guarded by the tenant's request rate over the shortest window."""
        slo = self.config["slo"]
        tiers: dict[str, list[Mapping[str, Any]]] = {}
        for tier in slo["burn_rates"]:
            tiers.setdefault(tier["severity"], []).append(tier)
        b = num(budget)
        for severity, members in tiers.items():
            members = sorted(members, key=lambda t: float(t["factor"]))
            first, rest = members[0], members[1:]
            factor = float(first["factor"])
            extra = f"and {series(first['short'])}{{{REAL}}} / {b} > {{t}}"
            for tier in rest:
                f = num(float(tier["factor"]))
                extra += (f" or {series(tier['long'])}{{{REAL}}} / {b} > {f}"
                          f" and {series(tier['short'])}{{{REAL}}} / {b} > {f}")
            # traffic now (the shortest window): a tenant gone quiet stops paging with its last errors
            shortest = min((t["short"] for t in members), key=parse_duration)
            windows = ", ".join(f"{float(t['factor']):g}x over {t['long']} and {t['short']}" for t in members)
            self.add(AlertRule(
                name=name, component="slo", severity=severity,
                value=f"{series(first['long'])}{{{REAL}}} / {b}", op=">", threshold=factor, extra=extra,
                guard=f"and on (tenant_id) {rec.requests_rate(shortest)} >= {num(self.minimum('min_request_rate'))}",
                for_seconds=min(self.for_seconds(t["for"]) for t in members),
                summary=f"{WHO} is burning its {kind} error budget too fast",
                description=(f"{WHO}: the {kind} SLO ({objective} over {slo['window']}) is burning at "
                             f"{VALUE}x the sustainable rate ({severity} when {windows}); at "
                             f"{factor:g}x the {slo['window']} budget is gone in "
                             f"{_exhaustion(slo['window'], factor)}."),
                title=f"Tenant {kind} error budget burn", runbook=anchor(name), dashboard=DASHBOARDS["slo"],
                fixture=fixture, low_traffic=low_traffic, sample_labels=dict(TENANT), labels={"slo": kind},
            ))

    def add(self, rule: AlertRule) -> None:
        self.rules.append(rule)


def build_rules(config: Mapping[str, Any]) -> list[AlertRule]:
    b = Builder(config)
    for part in (_app, _platform, _slo, _postgres, _redis, _temporal, _node, _kubernetes, _probes, _exporter,
                 _pipeline, _cost):
        part(b)
    return b.rules


def _app(b: Builder) -> None:
    buckets = b.config["app"]["latency_buckets_seconds"]
    route = {"route": "/v1/agents", "method": "POST"}
    b.ratio(
        key="error_ratio", name="TenantErrorRatioHigh", component="app",
        value=f"{rec.error_ratio('5m')}{{{REAL}}}", op=">", sample=TENANT,
        summary=f"High 5xx ratio for {WHO}",
        description=f"{WHO}: {VALUE} of API requests failed with 5xx over 5m (<SEV> above <T> for <FOR>).",
        title="Tenant error ratio high",
        fixture=fx.status_ratio(rec.REQUESTS, "status_class", "5xx", "2xx", extra=route),
        low_traffic=fx.status_ratio(rec.REQUESTS, "status_class", "5xx", "2xx", extra=route, per_minute=3),
        traffic=rec.requests_rate("5m"), minimum="min_request_rate", unit="ratio",
    )
    b.ratio(
        key="latency_p95_seconds", name="TenantLatencyP95High", component="app",
        value=f"{rec.latency_quantile('p95', '5m')}{{{REAL}}}", op=">", sample=TENANT,
        summary=f"Slow API responses for {WHO}",
        description=f"{WHO}: p95 API latency is {VALUE}s over 5m (<SEV> above <T> for <FOR>).",
        title="Tenant latency p95 high",
        fixture=fx.histogram_quantile(rec.DURATION, buckets, extra=route, requests=rec.REQUESTS),
        low_traffic=fx.histogram_quantile(rec.DURATION, buckets, extra=route, requests=rec.REQUESTS, per_minute=3),
        traffic=rec.requests_rate("5m"), minimum="min_request_rate", unit="seconds",
    )
    inference = "model_inference_duration_seconds"
    inference_buckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60]
    b.ratio(
        key="inference_latency_p95_seconds", name="TenantInferenceLatencyHigh", component="app",
        value=(f"histogram_quantile(0.95, sum by (tenant_id, le) (rate({inference}_bucket{{{REAL}}}[10m])))"),
        op=">", sample=TENANT,
        summary=f"Model inference is slow for {WHO}",
        description=f"{WHO}: p95 model inference takes {VALUE}s over 10m (<SEV> above <T> for <FOR>).",
        title="Tenant inference latency high",
        fixture=fx.histogram_quantile(inference, inference_buckets, extra={"model": "agent-large"}),
        low_traffic=fx.histogram_quantile(inference, inference_buckets, extra={"model": "agent-large"},
                                          per_minute=1),
        traffic=f"sum by (tenant_id) (rate({inference}_count[10m]))", minimum="min_inference_rate",
        unit="seconds",
    )
    lookups = "(sum by (tenant_id) (rate(cache_hits_total[15m])) + sum by (tenant_id) (rate(cache_misses_total[15m])))"
    b.ratio(
        key="cache_hit_ratio", name="TenantCacheHitRatioCollapsed", component="app",
        value=f"sum by (tenant_id) (rate(cache_hits_total{{{REAL}}}[15m])) / {lookups}", op="<", sample=TENANT,
        summary=f"Cache hit ratio collapsed for {WHO}",
        description=(f"{WHO}: only {VALUE} of cache lookups hit over 15m (<SEV> below <T> for <FOR>); "
                     "every miss goes to PostgreSQL or the model."),
        title="Tenant cache hit ratio collapsed",
        fixture=fx.counter_share("cache_hits_total", "cache_misses_total", extra={"cache": "prompt"}),
        low_traffic=fx.counter_share("cache_hits_total", "cache_misses_total", extra={"cache": "prompt"},
                                     per_minute=6),
        traffic=lookups, minimum="min_cache_lookups_rate", unit="ratio",
    )


def _erroring(b: Builder) -> str:
    """Real tenants past the error-ratio warning with enough traffic to count."""
    t = num(float(b.config["thresholds"]["error_ratio"]["warning"]))
    return (f"({rec.error_ratio('5m')}{{{REAL}}} > {t} and on (tenant_id) "
            f"{rec.requests_rate('5m')} >= {num(b.minimum('min_request_rate'))})")


def _top(expr: str, what: str) -> str:
    """`how many tenants: the top five` from Prometheus at evaluation (Alertmanager can't query)."""
    return (f"{{{{ range query `count({expr})` }}}}{{{{ .Value }}}}{{{{ end }}}} tenants {what}; top: "
            f"{{{{ range $i, $s := query `topk(5, {expr})` | sortByLabel \"tenant_id\" }}}}"
            f"{{{{ if $i }}}}, {{{{ end }}}}{{{{ $s.Labels.tenant_id }}}}{{{{ end }}}}")


def _platform(b: Builder) -> None:
    erroring = _erroring(b)
    t = human(float(b.config["thresholds"]["error_ratio"]["warning"]), "ratio")
    what = f"above {t} 5xx"
    share = float(b.config["thresholds"]["tenants_erroring_traffic_share"]["critical"])
    share_expr = (f"sum({rec.requests_rate('5m')} and on (tenant_id) {erroring})"
                  f" / sum({rec.requests_rate('5m')}{{{REAL}}})")
    b.threshold(
        key="tenants_erroring", name="ApiErrorsAcrossTenants", component="platform",
        value=f"count({erroring})", op=">=", extra=f"or count({erroring}) >= 2 and {share_expr} >= {num(share)}",
        sample={}, summary="5xx across many tenants at once: one shared cause",
        description=(f"{VALUE} tenants each see more than {t} 5xx (<SEV> at <T> or more, or 2 or more carrying "
                     f"{human(share, 'ratio')} of all traffic, for <FOR>): a shared dependency, a deploy or the "
                     "platform itself is failing, not one tenant. Per-tenant error and burn-rate alerts are held "
                     "back behind this one."),
        title="API errors across tenants", fixture=fx.tenants_failing(rec.REQUESTS, what),
        notes={"tenants_affected": _top(erroring, what)}, scope="platform", resolves=False,
        fire_level=lambda t, f: t, quiet_level=lambda t, f: t - 1,
    )
    budget = num(1 - float(b.config["slo"]["availability"]["objective"]))
    slow = min((tier for tier in b.config["slo"]["burn_rates"] if tier["severity"] == "warning"),
               key=lambda tier: parse_duration(tier["long"]), default=b.config["slo"]["burn_rates"][-1])
    factor = num(float(slow["factor"]))
    burning = (f"({rec.error_ratio(slow['long'])}{{{REAL}}} / {budget} > {factor} and on (tenant_id) "
               f"{rec.error_ratio(slow['short'])} / {budget} > {factor} and on (tenant_id) "
               f"{rec.requests_rate(slow['short'])} >= {num(b.minimum('min_request_rate'))})")
    b.threshold(
        key="tenants_burning_budget", name="TenantsBurningErrorBudget", component="platform",
        value=f"count({burning})", op=">=", sample={},
        summary="Many tenants are burning their availability error budget",
        description=(f"{VALUE} tenants burn their availability budget faster than {factor}x over {slow['long']} "
                     f"and {slow['short']} (<SEV> at <T> or more for <FOR>): a slow, shared degradation."),
        title="Tenants burning error budget", fixture=fx.tenants_failing(rec.REQUESTS, "burning"),
        notes={"tenants_affected": _top(burning, "burning")}, scope="platform", resolves=False,
        fire_level=lambda t, f: t, quiet_level=lambda t, f: t - 1,
    )
    unattributed = {"tenant_id": "_unassigned"}
    route = {"route": "/v1/agents", "method": "POST"}
    b.ratio(
        key="unattributed_error_ratio", name="UnattributedRequestsFailing", component="platform",
        value=f"{rec.error_ratio('5m')}{{{PSEUDO}}}", op=">", sample=unattributed,
        summary="Requests no tenant rule claims ({{ $labels.tenant_id }}) are failing",
        description=(f"{VALUE} of the API requests attributed to {{{{ $labels.tenant_id }}}} failed with 5xx over 5m "
                     "(<SEV> above <T> for <FOR>). They belong to no known tenant (tenancy rules or the "
                     "tenant cap), so no tenant alert covers them."),
        title="Unattributed requests failing",
        fixture=fx.status_ratio(rec.REQUESTS, "status_class", "5xx", "2xx", extra=route),
        low_traffic=fx.status_ratio(rec.REQUESTS, "status_class", "5xx", "2xx", extra=route, per_minute=3),
        traffic=rec.requests_rate("5m"), minimum="min_request_rate", unit="ratio", scope="platform",
        notes={"tenants_affected": "no tenant ({{ $labels.tenant_id }})"},
    )


def _slo(b: Builder) -> None:
    slo = b.config["slo"]
    buckets = b.config["app"]["latency_buckets_seconds"]
    threshold = float(slo["latency"]["threshold_seconds"])
    avail_budget = 1 - float(slo["availability"]["objective"])
    latency_budget = 1 - float(slo["latency"]["objective"])
    route = {"route": "/v1/agents", "method": "GET"}
    b.burn_rate(
        name="TenantAvailabilityBudgetBurn", kind="availability", series=rec.error_ratio, budget=avail_budget,
        fixture=fx.status_ratio(rec.REQUESTS, "status_class", "5xx", "2xx", factor=avail_budget, extra=route),
        low_traffic=fx.status_ratio(rec.REQUESTS, "status_class", "5xx", "2xx", factor=avail_budget,
                                    extra=route, per_minute=3),
        objective=f"{slo['availability']['objective'] * 100:g}% of requests without a 5xx",
    )
    b.burn_rate(
        name="TenantLatencyBudgetBurn", kind="latency", series=rec.slow_ratio, budget=latency_budget,
        fixture=fx.histogram_slow_share(rec.DURATION, buckets, threshold, factor=latency_budget,
                                        requests=rec.REQUESTS),
        low_traffic=fx.histogram_slow_share(rec.DURATION, buckets, threshold, factor=latency_budget,
                                            requests=rec.REQUESTS, per_minute=3),
        objective=f"{slo['latency']['objective'] * 100:g}% of requests faster than {human(threshold, 'seconds')}",
    )


def _exhaustion(window: str, factor: float) -> str:
    return human(parse_duration(window) / factor, "seconds")


def _postgres(b: Builder) -> None:
    b.down(
        key="target_down", name="PostgresDown", component="postgres", metric="pg_up", sample=PG,
        summary="PostgreSQL server {{ $labels.server }} is down (all tenants)",
        description="The exporter cannot query PostgreSQL server {{ $labels.server }} ({{ $labels.tenant_id }}: "
                    "every tenant on it is affected) for <FOR>.",
        title="Postgres down", notes={"tenants_affected": "all tenants on {{ $labels.server }}"},
    )
    b.down(
        key="pgbouncer_down", name="PgbouncerDown", component="postgres", metric="pgbouncer_up", sample=PG,
        summary="PgBouncer in front of {{ $labels.server }} is down (all tenants)",
        description="The exporter cannot query PgBouncer's admin console for {{ $labels.server }} "
                    "({{ $labels.tenant_id }}: every tenant's connections go through it) for <FOR>.",
        title="Pgbouncer down", notes={"tenants_affected": "all tenants on {{ $labels.server }}"},
    )
    b.threshold(
        key="pg_connection_saturation_ratio", name="PostgresConnectionSaturation", component="postgres",
        value='max by (server, tenant_id) (pg_connection_saturation_ratio{tenant_id="_shared"})', op=">", sample=PG,
        summary="PostgreSQL {{ $labels.server }} is running out of connections",
        description=(f"PostgreSQL server {{{{ $labels.server }}}} uses {VALUE} of max_connections "
                     "(<SEV> above <T> for <FOR>); new connections from every tenant will be refused."),
        title="Postgres connection saturation", fixture=fx.gauge("pg_connection_saturation_ratio"), unit="ratio",
    )
    b.threshold(
        key="pg_tenant_connection_share_ratio", name="PostgresTenantConnectionShare", component="postgres",
        value=(f"sum by (server, tenant_id) (pg_tenant_connections{{{REAL}}})"
               " / on (server) group_left () max by (server) (pg_max_connections)"), op=">", sample=PG_TENANT,
        summary=f"{WHO} holds a large share of PostgreSQL {{{{ $labels.server }}}} connections",
        description=(f"{WHO} holds {VALUE} of max_connections on PostgreSQL server {{{{ $labels.server }}}} "
                     "(<SEV> above <T> for <FOR>), starving the other tenants."),
        title="Postgres tenant connection share", fixture=_tenant_share_fixture(), unit="ratio",
    )
    b.threshold(
        key="pg_connection_saturation_ratio", name="PgbouncerPoolSaturation", component="postgres",
        value=f"max by (server, tenant_id) (pgbouncer_pool_saturation_ratio{{{REAL}}})", op=">", sample=PG_TENANT,
        summary=f"PgBouncer pool for {WHO} is saturated",
        description=(f"PgBouncer pool for {WHO} on {{{{ $labels.server }}}} is {VALUE} used "
                     "(<SEV> above <T> for <FOR>)."),
        title="Pgbouncer pool saturation", fixture=fx.gauge("pgbouncer_pool_saturation_ratio"), unit="ratio",
    )
    b.threshold(
        key="pgbouncer_clients_waiting", name="PgbouncerClientsWaiting", component="postgres",
        value=f"max by (server, tenant_id) (pgbouncer_clients_waiting{{{REAL}}})", op=">=", sample=PG_TENANT,
        summary=f"Clients of {WHO} wait for a PgBouncer server connection",
        description=(f"{VALUE} clients of {WHO} are waiting in PgBouncer on {{{{ $labels.server }}}} "
                     "(<SEV> at <T> or more for <FOR>)."),
        title="Pgbouncer clients waiting", fixture=fx.gauge("pgbouncer_clients_waiting"),
    )
    b.threshold(
        key="pg_long_transaction_seconds", name="PostgresLongRunningTransaction", component="postgres",
        value=f"max by (server, tenant_id) (pg_tenant_oldest_transaction_age_seconds{{{REAL}}})", op=">",
        sample=PG_TENANT,
        summary=f"A transaction of {WHO} has been open too long",
        description=(f"The oldest open transaction of {WHO} on {{{{ $labels.server }}}} started {VALUE}s ago "
                     "(<SEV> above <T> for <FOR>): it holds locks and stops vacuum for every tenant."),
        title="Postgres long running transaction", fixture=fx.gauge("pg_tenant_oldest_transaction_age_seconds"),
        unit="seconds",
    )
    b.threshold(
        key="pg_idle_in_transaction_sessions", name="PostgresIdleInTransaction", component="postgres",
        value=f'sum by (server, tenant_id) (pg_tenant_connections{{state="idle_in_transaction",{REAL}}})',
        op=">=", sample=PG_TENANT,
        summary=f"Sessions of {WHO} sit idle in a transaction",
        description=(f"{VALUE} sessions of {WHO} on {{{{ $labels.server }}}} are idle in a transaction "
                     "(<SEV> at <T> or more for <FOR>): the application forgot to commit or roll back."),
        title="Postgres idle in transaction",
        fixture=fx.gauge("pg_tenant_connections", extra={"state": "idle_in_transaction"}),
    )
    commits = "sum by (server, tenant_id) (rate(pg_database_commits_total[15m]))"
    rollbacks = "sum by (server, tenant_id) (rate(pg_database_rollbacks_total[15m]))"
    b.ratio(
        key="pg_rollback_ratio", name="PostgresRollbackRatioHigh", component="postgres",
        value=f"{rollbacks} / ({commits} + {rollbacks})", op=">", sample=PG,
        summary="Many transactions roll back on PostgreSQL {{ $labels.server }}",
        description=(f"{VALUE} of the transactions on PostgreSQL server {{{{ $labels.server }}}} rolled back over "
                     "15m (<SEV> above <T> for <FOR>): failing statements from some or all tenants."),
        title="Postgres rollback ratio high",
        fixture=fx.counter_share("pg_database_rollbacks_total", "pg_database_commits_total",
                                 extra={"database": "app"}),
        low_traffic=fx.counter_share("pg_database_rollbacks_total", "pg_database_commits_total",
                                     extra={"database": "app"}, per_minute=3),
        traffic=f"({commits} + {rollbacks})", minimum="min_request_rate", unit="ratio",
    )
    b.threshold(
        key="replication_lag_seconds", name="PostgresReplicationLag", component="postgres",
        value="max by (server, tenant_id) (pg_replication_lag_seconds)", op=">", sample=PG,
        summary="PostgreSQL replica {{ $labels.server }} lags behind its primary",
        description=(f"Replica {{{{ $labels.server }}}} replays {VALUE}s behind the primary "
                     "(<SEV> above <T> for <FOR>); reads from it are stale for every tenant."),
        title="Postgres replication lag", fixture=fx.gauge("pg_replication_lag_seconds"), unit="seconds",
    )
    b.threshold(
        key="pg_deadlocks_per_minute", name="PostgresDeadlocks", component="postgres",
        value="sum by (server, tenant_id) (rate(pg_database_deadlocks_total[10m])) * 60", op=">", sample=PG,
        summary="Deadlocks on PostgreSQL {{ $labels.server }}",
        description=(f"PostgreSQL server {{{{ $labels.server }}}} resolves {VALUE} deadlocks per minute over 10m "
                     "(<SEV> above <T> for <FOR>)."),
        title="Postgres deadlocks", fixture=fx.counter_rate("pg_database_deadlocks_total", scale=60,
                                                            extra={"database": "app"}),
        unit="per_minute", fire_level=lambda t, f: t + 0.5, quiet_level=lambda t, f: max(t - 0.5, 0),
    )


def _tenant_share_fixture() -> FixtureFn:
    def build(level: float, labels: Mapping[str, str], minutes: int) -> Fixture:
        max_conn = 100.0
        return Fixture((
            fx.series_of("pg_tenant_connections", {**labels, "state": "active"},
                       fx.constant(level * max_conn, minutes)),
            fx.series_of("pg_max_connections", {"server": labels["server"], "tenant_id": "_shared"},
                       fx.constant(max_conn, minutes)),
        ), level)

    return build


def _redis(b: Builder) -> None:
    everyone = {"tenants_affected": "all tenants on {{ $labels.server }}"}
    b.down(
        key="target_down", name="RedisDown", component="redis", metric="redis_up", sample=REDIS,
        summary="Redis {{ $labels.server }} is down (all tenants)",
        description="The exporter cannot reach Redis {{ $labels.server }} ({{ $labels.tenant_id }}: every tenant's "
                    "cache and queues on it are affected) for <FOR>.",
        title="Redis down", notes=everyone,
    )
    b.threshold(
        key="redis_memory_saturation_ratio", name="RedisMemoryNearMax", component="redis",
        value="max by (server, tenant_id) (redis_memory_saturation_ratio)", op=">", sample=REDIS,
        summary="Redis {{ $labels.server }} is close to maxmemory",
        description=(f"Redis {{{{ $labels.server }}}} uses {VALUE} of maxmemory (<SEV> above <T> for <FOR>); "
                     "past it Redis evicts or refuses writes for every tenant."),
        title="Redis memory near max", fixture=fx.gauge("redis_memory_saturation_ratio"), unit="ratio",
    )
    b.threshold(
        key="redis_evictions_per_second", name="RedisEvictions", component="redis",
        value="sum by (server, tenant_id) (rate(redis_evicted_keys_total[5m]))", op=">", sample=REDIS,
        summary="Redis {{ $labels.server }} evicts keys",
        description=f"Redis {{{{ $labels.server }}}} evicts {VALUE} keys/s over 5m (<SEV> above <T> for <FOR>).",
        title="Redis evictions", fixture=fx.counter_rate("redis_evicted_keys_total"), unit="per_second",
    )
    b.threshold(
        key="redis_rejected_connections_per_minute", name="RedisRejectedConnections", component="redis",
        value="sum by (server, tenant_id) (rate(redis_rejected_connections_total[5m])) * 60", op=">", sample=REDIS,
        summary="Redis {{ $labels.server }} refuses connections (maxclients)",
        description=(f"Redis {{{{ $labels.server }}}} rejected {VALUE} connections per minute over 5m "
                     "(<SEV> above <T> for <FOR>): maxclients is reached, every tenant's new clients fail."),
        title="Redis rejected connections", fixture=fx.counter_rate("redis_rejected_connections_total", scale=60),
        unit="per_minute", fire_level=lambda t, f: t + 1, quiet_level=lambda t, f: 0,
    )
    b.down(
        key="redis_persistence_failure", name="RedisRdbSaveFailing", component="redis",
        metric="redis_rdb_last_save_success", sample=REDIS,
        summary="Redis {{ $labels.server }} cannot write its RDB snapshot (all tenants)",
        description="The last background save of Redis {{ $labels.server }} failed and has not succeeded since "
                    "(<FOR>): a restart loses every tenant's data since the last good snapshot, and Redis may "
                    "refuse writes (stop-writes-on-bgsave-error).",
        title="Redis rdb save failing", notes=everyone,
    )
    b.threshold(
        key="redis_persistence_failure", name="RedisAofWriteFailing", component="redis",
        value="min by (server, tenant_id) (redis_aof_last_write_success)", op="<",
        extra="and on (server, tenant_id) max by (server, tenant_id) (redis_aof_enabled) == 1", sample=REDIS,
        summary="Redis {{ $labels.server }} cannot write its append-only file (all tenants)",
        description="The last AOF write of Redis {{ $labels.server }} failed (<FOR>); writes of every tenant are "
                    "not durable.",
        title="Redis aof write failing",
        fixture=fx.combine(fx.gauge("redis_aof_last_write_success"),
                           fx.gauge("redis_aof_enabled", transform=lambda _: 1)),
        fire_level=lambda t, f: 0, quiet_level=lambda t, f: 1, notes=everyone,
    )
    b.down(
        key="redis_replication_link_down", name="RedisReplicationLinkDown", component="redis",
        metric="redis_replication_link_up", sample=REDIS,
        summary="Redis replica {{ $labels.server }} lost its primary (all tenants)",
        description="The replication link of Redis replica {{ $labels.server }} has been down for <FOR>: it "
                    "serves every tenant stale data and cannot take over.",
        title="Redis replication link down", notes=everyone,
    )
    b.threshold(
        key="redis_keyspace_stale_seconds", name="RedisKeyspaceDataStale", component="redis",
        value="max by (server, tenant_id) (redis_keyspace_pass_age_seconds)", op=">", sample=REDIS,
        summary="Per-tenant Redis figures of {{ $labels.server }} are stale",
        description=(f"The last complete keyspace pass over Redis {{{{ $labels.server }}}} finished {VALUE}s ago "
                     "(<SEV> above <T> for <FOR>, several scan intervals): every tenant's key and memory figures "
                     "are old. See redis_keyspace_pass_errors_total."),
        title="Redis keyspace data stale", fixture=fx.gauge("redis_keyspace_pass_age_seconds"), unit="seconds",
    )


def _temporal(b: Builder) -> None:
    b.down(
        key="target_down", name="TemporalDown", component="temporal", metric="temporal_up", sample=TEMPORAL,
        summary="Temporal {{ $labels.server }} is unreachable (all tenants)",
        description="The exporter cannot reach the Temporal frontend {{ $labels.server }} ({{ $labels.tenant_id }}: "
                    "every tenant's workflows are affected) for <FOR>.",
        title="Temporal down", notes={"tenants_affected": "all tenants on {{ $labels.server }}"},
    )
    keys = "server, tenant_id, task_queue"
    b.threshold(
        key="temporal_backlog_age_seconds", name="TemporalBacklogAge", component="temporal",
        value=f"max by ({keys}) (temporal_tenant_task_queue_backlog_age_seconds{{{REAL}}})", op=">", sample=QUEUE,
        summary=f"Tasks of {WHO} wait too long in {{{{ $labels.task_queue }}}}",
        description=(f"The oldest task of {WHO} in task queue {{{{ $labels.task_queue }}}} has waited {VALUE}s "
                     "(<SEV> above <T> for <FOR>): workers are missing or too slow."),
        title="Temporal backlog age", fixture=fx.gauge("temporal_tenant_task_queue_backlog_age_seconds",
                                                       extra={"task_queue_type": "workflow"}), unit="seconds",
    )
    # The backlog count is approximate and drops to 0 when a queue partition unloads: the age says too.
    b.threshold(
        key="temporal_queue_without_workers", name="TemporalQueueWithoutWorkers", component="temporal",
        value=(f"((sum by ({keys}) (temporal_tenant_task_queue_backlog{{{REAL}}}) > 0"
               f" or max by ({keys}) (temporal_tenant_task_queue_backlog_age_seconds{{{REAL}}}))"
               f" unless on ({keys}) (sum by ({keys}) (temporal_tenant_task_queue_pollers) > 0))"),
        op=">", sample=QUEUE,
        summary=f"No worker polls {{{{ $labels.task_queue }}}} of {WHO}",
        description=(f"Tasks of {WHO} wait in task queue {{{{ $labels.task_queue }}}} (backlog {VALUE}, count or, "
                     "when Temporal reports none, age in seconds) and no worker has polled it (<SEV> for <FOR>): "
                     "the tenant's workers are down or deployed to the wrong queue."),
        title="Temporal queue without workers",
        fixture=fx.combine(fx.gauge("temporal_tenant_task_queue_backlog", extra={"task_queue_type": "workflow"}),
                           fx.gauge("temporal_tenant_task_queue_backlog_age_seconds",
                                    extra={"task_queue_type": "workflow"}),
                           fx.gauge("temporal_tenant_task_queue_pollers", extra={"task_queue_type": "workflow"},
                                    transform=lambda _: 0)),
        fire_level=lambda t, f: t + 5, quiet_level=lambda t, f: t,
    )
    b.threshold(
        key="temporal_backlog_growth_per_minute", name="TemporalBacklogGrowing", component="temporal",
        value=f"sum by ({keys}) (deriv(temporal_tenant_task_queue_backlog{{{REAL}}}[10m])) * 60", op=">",
        sample=QUEUE,
        summary=f"Backlog of {WHO} keeps growing in {{{{ $labels.task_queue }}}}",
        description=(f"The backlog of {WHO} in task queue {{{{ $labels.task_queue }}}} grows by {VALUE} tasks per "
                     "minute (<SEV> above <T> for <FOR>): add workers."),
        title="Temporal backlog growing", fixture=fx.linear_growth("temporal_tenant_task_queue_backlog",
                                                                   extra={"task_queue_type": "activity"}),
        unit="per_minute",
    )
    closed = "temporal_tenant_workflows_closed"
    b.ratio(
        key="workflow_failure_ratio", name="TemporalWorkflowFailureRatio", component="temporal",
        value=(f'sum by (server, tenant_id) ({closed}{{status=~"failed|timed_out|terminated",{REAL}}})'
               f" / sum by (server, tenant_id) ({closed})"), op=">", sample=PG_TENANT,
        summary=f"Workflows of {WHO} fail",
        description=(f"{VALUE} of the workflows of {WHO} that closed recently failed, timed out or were terminated "
                     "(<SEV> above <T> for <FOR>)."),
        title="Temporal workflow failure ratio",
        fixture=fx.gauge_status_ratio(closed, "status", "failed", "completed"),
        low_traffic=fx.gauge_status_ratio(closed, "status", "failed", "completed", total=10),
        traffic=f"sum by (server, tenant_id) ({closed})", minimum="min_closed_workflows", unit="ratio",
    )
    # Worker side (collectors.worker), per Temporal's worker-performance guide.
    s2s = "temporal_worker_schedule_to_start_latency_seconds"
    b.threshold(
        key="temporal_worker_schedule_to_start_p99_seconds", name="TemporalWorkerScheduleToStartHigh",
        component="temporal",
        value=(f"histogram_quantile(0.99, sum by (tenant_id, task_queue, le) "
               f"(rate({s2s}_bucket{{{REAL}}}[5m])))"), op=">", sample=WORKER_QUEUE,
        summary=f"Tasks of {WHO} wait for a worker in {{{{ $labels.task_queue }}}}",
        description=(f"p99 schedule-to-start of {WHO} in task queue {{{{ $labels.task_queue }}}} is {VALUE}s over 5m "
                     "(<SEV> above <T> for <FOR>): its workers have too few slots or too few replicas."),
        title="Temporal worker schedule-to-start high",
        fixture=fx.histogram_quantile(s2s, WORKER_BUCKETS, q=0.99, extra=WORKER_EXTRA), unit="seconds",
    )
    b.threshold(
        key="temporal_worker_slots_exhausted", name="TemporalWorkerSlotsExhausted", component="temporal",
        value=(f"min by (tenant_id, task_queue) "
               f'(temporal_worker_task_slots_available{{task_type!="local_activity",{REAL}}})'),
        op="<=", sample=WORKER_QUEUE,
        summary=f"Workers of {WHO} have no free task slot in {{{{ $labels.task_queue }}}}",
        description=(f"A worker of {WHO} on task queue {{{{ $labels.task_queue }}}} has {VALUE} free task slots "
                     "(<SEV> at <T> for <FOR>): it is saturated and new tasks wait in the queue."),
        title="Temporal worker slots exhausted",
        fixture=fx.gauge("temporal_worker_task_slots_available", extra=WORKER_EXTRA),
        fire_level=lambda t, f: 0, quiet_level=lambda t, f: 1,
    )


def _node(b: Builder) -> None:
    avail = f"node_filesystem_avail_bytes{{{FS_FILTER}}}"
    size = f"node_filesystem_size_bytes{{{FS_FILTER}}}"
    fs = "instance, mountpoint"
    device = {"device": "/dev/sda1", "fstype": "ext4"}
    host = {"tenants_affected": "all tenants on host {{ $labels.instance }}"}
    b.threshold(
        key="disk_free_ratio", name="HostDiskSpaceLow", component="node",
        value=f"min by ({fs}) ({avail} / {size})", op="<", sample=FILESYSTEM,
        summary="Disk {{ $labels.mountpoint }} on {{ $labels.instance }} is filling up (all tenants on the host)",
        description=(f"Only {VALUE} of {{{{ $labels.mountpoint }}}} on {{{{ $labels.instance }}}} is free "
                     "(<SEV> below <T> for <FOR>); every tenant on this host is affected."),
        title="Host disk space low",
        fixture=fx.gauge_pair("node_filesystem_avail_bytes", "node_filesystem_size_bytes", extra=device),
        unit="ratio", notes=host,
    )
    readonly = f"node_filesystem_readonly{{{FS_FILTER}}}"
    b.threshold(
        key="disk_fill_hours", name="HostDiskWillFill", component="node",
        value=f"min by ({fs}) ({avail} / clamp_min(-deriv({avail}[6h]), 1e-09)) / 3600", op="<",
        extra=(f"and on ({fs}) min by ({fs}) ({avail} / {size}) < 0.4"
               f" and on ({fs}) max by ({fs}) ({readonly}) == 0"),
        sample=FILESYSTEM,
        summary="Disk {{ $labels.mountpoint }} on {{ $labels.instance }} will be full soon (all tenants on the host)",
        description=("At the rate of the last 6h, {{ $labels.mountpoint }} on {{ $labels.instance }} is full "
                     f"in {VALUE} hours (<SEV> below <T> for <FOR>; only while under 40% free and writable)."),
        title="Host disk will fill",
        fixture=fx.combine(fx.linear_fill("node_filesystem_avail_bytes", "node_filesystem_size_bytes", extra=device),
                           fx.gauge("node_filesystem_readonly", extra=device, transform=lambda _: 0)),
        unit="hours", notes=host,
        # the hours left shrink while the alert waits out `for`: fire deep enough under the threshold
        fire_level=lambda t, f: t * 0.9 - f / 3600, quiet_level=lambda t, f: t * 1.1,
    )
    files_free = f"node_filesystem_files_free{{{FS_FILTER}}}"
    files = f"node_filesystem_files{{{FS_FILTER}}}"
    b.threshold(
        key="disk_inodes_free_ratio", name="HostInodesLow", component="node",
        value=f"min by ({fs}) ({files_free} / {files})", op="<", sample=FILESYSTEM,
        summary="Inodes on {{ $labels.mountpoint }} of {{ $labels.instance }} run out (all tenants on the host)",
        description=(f"Only {VALUE} of the inodes of {{{{ $labels.mountpoint }}}} on {{{{ $labels.instance }}}} are "
                     "free (<SEV> below <T> for <FOR>); file creation fails for every tenant once they are gone."),
        title="Host inodes low",
        fixture=fx.gauge_pair("node_filesystem_files_free", "node_filesystem_files", extra=device),
        unit="ratio", notes=host,
    )
    b.threshold(
        key="memory_used_ratio", name="HostMemoryHigh", component="node",
        value="max by (instance) (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)", op=">",
        sample=HOST,
        summary="Memory on {{ $labels.instance }} is nearly exhausted (all tenants on the host)",
        description=(f"{{{{ $labels.instance }}}} uses {VALUE} of its memory (<SEV> above <T> for <FOR>); "
                     "every tenant on this host risks the OOM killer."),
        title="Host memory high",
        fixture=fx.gauge_pair("node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes", used=True),
        unit="ratio", notes=host,
    )
    b.threshold(
        key="cpu_used_ratio", name="HostCpuHigh", component="node",
        value='max by (instance) (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))', op=">",
        sample=HOST,
        summary="CPU on {{ $labels.instance }} is busy (all tenants on the host): scale out",
        description=(f"{{{{ $labels.instance }}}} CPUs are {VALUE} busy over 5m (<SEV> above <T> for <FOR>); "
                     "this is the scaling trigger."),
        title="Host CPU high", fixture=fx.cpu_busy(), unit="ratio", notes=host,
    )
    b.threshold(
        key="network_errors_per_second", name="HostNetworkErrors", component="node",
        value=("sum by (instance, device) (rate(node_network_receive_errs_total[5m]))"
               " + on (instance, device) sum by (instance, device) (rate(node_network_transmit_errs_total[5m]))"),
        op=">", sample=IFACE,
        summary="Network interface {{ $labels.device }} of {{ $labels.instance }} has errors (all tenants on the host)",
        description=(f"{{{{ $labels.device }}}} on {{{{ $labels.instance }}}} sees {VALUE} receive/transmit errors per "
                     "second over 5m (<SEV> above <T> for <FOR>): a bad link, driver or NIC."),
        title="Host network errors",
        fixture=fx.combine(fx.counter_rate("node_network_receive_errs_total"),
                           fx.counter_rate("node_network_transmit_errs_total", transform=lambda _: 0)),
        unit="per_second", notes=host,
    )
    b.threshold(
        key="clock_skew_seconds", name="HostClockSkew", component="node",
        value="max by (instance) (abs(node_time_seconds - timestamp(node_time_seconds)))", op=">", sample=HOST,
        summary="Clock of {{ $labels.instance }} is off (all tenants on the host)",
        description=(f"{{{{ $labels.instance }}}} reports a time {VALUE}s away from Prometheus's "
                     "(<SEV> above <T> for <FOR>): check NTP; TLS, tokens and Temporal timers break for every "
                     "tenant on it."),
        title="Host clock skew", fixture=fx.clock_offset("node_time_seconds"), unit="seconds", notes=host,
    )


def _kubernetes(b: Builder) -> None:
    keys = "namespace, pod, container"
    pod = {"tenants_affected": "all tenants served by {{ $labels.pod }}"}
    b.threshold(
        key="container_restarts_per_hour", name="ContainerRestarting", component="kubernetes",
        value=f"sum by ({keys}) (rate(kube_pod_container_status_restarts_total[5m])) * 3600", op=">",
        sample=CONTAINER,
        summary="Container {{ $labels.container }} of {{ $labels.pod }} keeps restarting (all tenants it serves)",
        description=("{{ $labels.namespace }}/{{ $labels.pod }} container {{ $labels.container }} restarts "
                     f"{VALUE} times per hour over 5m (<SEV> above <T> for <FOR>)."),
        title="Container restarting",
        fixture=fx.counter_rate("kube_pod_container_status_restarts_total", scale=3600),
        unit="", notes=pod, fire_level=lambda t, f: t * 2,
    )
    b.threshold(
        key="container_oom_killed", name="ContainerOomKilled", component="kubernetes",
        value=f'max by ({keys}) (kube_pod_container_status_last_terminated_reason{{reason="OOMKilled"}})',
        op=">=", sample=CONTAINER,
        summary="Container {{ $labels.container }} of {{ $labels.pod }} was OOM-killed (all tenants it serves)",
        description=("{{ $labels.namespace }}/{{ $labels.pod }} container {{ $labels.container }} was last "
                     "terminated by the OOM killer: raise its memory limit or find the leak."),
        title="Container oom killed",
        fixture=fx.gauge("kube_pod_container_status_last_terminated_reason", extra={"reason": "OOMKilled"}),
        fire_level=lambda t, f: 1, quiet_level=lambda t, f: 0, notes=pod,
    )
    b.threshold(
        key="container_crashloop", name="ContainerCrashLooping", component="kubernetes",
        value=f'max by ({keys}) (kube_pod_container_status_waiting_reason{{reason="CrashLoopBackOff"}})',
        op=">=", sample=CONTAINER,
        summary="Container {{ $labels.container }} of {{ $labels.pod }} is in CrashLoopBackOff (all tenants it serves)",
        description=("{{ $labels.namespace }}/{{ $labels.pod }} container {{ $labels.container }} has waited in "
                     "CrashLoopBackOff for <FOR>: it exits at start; see its previous logs."),
        title="Container crash looping",
        fixture=fx.gauge("kube_pod_container_status_waiting_reason", extra={"reason": "CrashLoopBackOff"}),
        fire_level=lambda t, f: 1, quiet_level=lambda t, f: 0, notes=pod,
    )
    b.threshold(
        key="container_cpu_throttled_ratio", name="ContainerCpuThrottled", component="kubernetes",
        value=(f"sum by ({keys}) (rate(container_cpu_cfs_throttled_periods_total[5m]))"
               f" / sum by ({keys}) (rate(container_cpu_cfs_periods_total[5m]))"), op=">", sample=CONTAINER,
        summary="Container {{ $labels.container }} of {{ $labels.pod }} is CPU-throttled (all tenants it serves)",
        description=(f"{VALUE} of the CPU periods of {{{{ $labels.namespace }}}}/{{{{ $labels.pod }}}} container "
                     "{{ $labels.container }} were throttled over 5m (<SEV> above <T> for <FOR>): latency for "
                     "every tenant it serves; raise the CPU limit."),
        title="Container cpu throttled",
        fixture=fx.counter_share("container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_periods_total",
                                 total_includes_part=True),
        unit="ratio", notes=pod,
    )


def _probes(b: Builder) -> None:
    b.down(
        key="probe_failure", name="ProbeFailing", component="probes", metric="probe_success", sample=PROBE,
        summary="Uptime probe {{ $labels.probe }} fails for tenant {{ $labels.tenant_id }}",
        description="The uptime check {{ $labels.probe }} of tenant {{ $labels.tenant_id }} has failed for <FOR>; "
                    "see probe_failure_info for the reason.",
        title="Probe failing", matcher=REAL,
    )
    b.threshold(
        key="cert_expiry_days", name="ProbeCertificateExpiry", component="probes",
        value=f"min by (probe, tenant_id) (probe_tls_cert_expiry_days{{{REAL}}})", op="<", sample=PROBE,
        summary="TLS certificate of {{ $labels.probe }} expires soon (tenant {{ $labels.tenant_id }})",
        description=(f"The certificate served to probe {{{{ $labels.probe }}}} of tenant {{{{ $labels.tenant_id }}}} "
                     f"expires in {VALUE} days (<SEV> below <T>)."),
        title="Probe certificate expiry", fixture=fx.gauge("probe_tls_cert_expiry_days"), unit="days",
    )


def _exporter(b: Builder) -> None:
    b.threshold(
        key="target_down_share", name="TargetDown", component="exporter",
        value="1 - avg by (job) (up)", op=">=", sample=JOB,
        summary="Prometheus cannot scrape many {{ $labels.job }} targets",
        description=(f"{VALUE} of the targets of job {{{{ $labels.job }}}} have failed their scrapes "
                     "(<SEV> at <T> or more for <FOR>; one target down during a deploy does not count): "
                     "their figures for every tenant are missing."),
        title="Target down", fixture=fx.targets_down("up"), unit="ratio",
        fire_level=lambda t, f: 0.75, quiet_level=lambda t, f: 0.25,
        notes={"tenants_affected": "all tenants (monitoring of {{ $labels.job }} blind)"},
    )
    b.down(
        key="collector_failing", name="ObsbundleCollectorFailing", component="exporter",
        metric="obsbundle_collector_success", sample=COLLECTOR,
        summary="Collector {{ $labels.collector }} of the {{ $labels.exporter }} exporter fails",
        description="The {{ $labels.collector }} collector of the {{ $labels.exporter }} exporter for server "
                    "{{ $labels.server }} has failed or overrun its budget for <FOR>; see "
                    "obsbundle_collector_last_error_info for its error code. Its figures for every tenant are missing.",
        title="Collector failing", notes={"tenants_affected": "all tenants on {{ $labels.server }}"},
    )
    b.threshold(
        key="collector_data_stale_seconds", name="ObsbundleCollectorDataStale", component="exporter",
        value="max by (exporter, server, collector) (obsbundle_collector_data_age_seconds)", op=">",
        sample=COLLECTOR,
        summary="Figures of collector {{ $labels.collector }} ({{ $labels.exporter }} exporter) are stale",
        description=(f"The {{{{ $labels.collector }}}} collector of the {{{{ $labels.exporter }}}} exporter for "
                     f"{{{{ $labels.server }}}} last refreshed {VALUE}s ago (<SEV> above <T> for <FOR>): it keeps "
                     "failing or overrunning, so every tenant's figures from it are old."),
        title="Collector data stale", fixture=fx.gauge("obsbundle_collector_data_age_seconds"), unit="seconds",
        notes={"tenants_affected": "all tenants on {{ $labels.server }}"},
    )
    b.threshold(
        key="tenant_overflow_per_minute", name="TenantCardinalityOverflow", component="exporter",
        value="sum by (exporter, server) (rate(obsbundle_tenants_overflowed_total[10m])) * 60", op=">",
        sample=EXPORTER,
        summary="The {{ $labels.exporter }} exporter hit tenancy.max_tenants",
        description=("The {{ $labels.exporter }} exporter for {{ $labels.server }} attributes "
                     f"{VALUE} names per minute to tenant_id=_overflow (<SEV>, for <FOR>): tenants past the cap "
                     "are lumped together, not "
                     "all tenants are told apart. Raise tenancy.max_tenants or fix the tenancy rules."),
        title="Tenant cardinality overflow", fixture=fx.counter_rate("obsbundle_tenants_overflowed_total", scale=60),
        unit="per_minute", fire_level=lambda t, f: t + 1, quiet_level=lambda t, f: 0,
    )


# source kind (config `sources`) -> (alertname, a metric its exporter always emits, what)
ABSENT = {
    "postgres": ("PostgresMetricsAbsent", "pg_up", "PostgreSQL exporter"),
    "redis": ("RedisMetricsAbsent", "redis_up", "Redis exporter"),
    "temporal": ("TemporalMetricsAbsent", "temporal_up", "Temporal exporter"),
    "probes": ("ProbesMetricsAbsent", "probe_success", "probes exporter"),
}


def _pipeline(b: Builder) -> None:
    """The alert pipeline's own health: Watchdog (always firing) and absent metrics."""
    b.add(AlertRule(
        name="Watchdog", component="exporter", severity="info", value="vector(1)", op=">=", threshold=1,
        for_seconds=b.for_seconds("1m"),
        summary="The alerting pipeline works (this alert always fires)",
        description=("Watchdog fires all the time and goes to the dead man's switch "
                     "(alerting.watchdog). When it stops arriving there, Prometheus, Alertmanager or the "
                     "path between them is broken and no tenant's alert would reach anyone."),
        title="Watchdog", runbook=anchor("Watchdog"), dashboard=DASHBOARDS["exporter"], fixture=fx.absent("up"),
        sample_labels={}, scope="platform", resolves=False, always=True,
        notes={"tenants_affected": "none (pipeline heartbeat)"},
    ))
    configured = b.config.get("sources") or {}
    for kind, (name, metric, what) in ABSENT.items():
        if configured.get(kind):
            b.absent(name=name, component="exporter", metric=metric, what=what)
    b.absent(name="AppMetricsAbsent", component="exporter", metric=rec.REQUESTS, what="application")


def _cost(b: Builder) -> None:
    """Budgets of the cost model (docs/cost.md): one tenant's overspend is one cause, paged once."""
    from obsbundle.cost.model import BUDGET, BUDGET_USED, FORECAST, cost_model

    if not cost_model(b.config).budgets:
        return
    b.threshold(
        key="cost_budget_forecast_ratio", name="TenantCostForecastOverBudget", component="budget",
        value=f"{FORECAST}{{{REAL}}} / on (tenant_id) {BUDGET}", op=">", sample=TENANT,
        summary=f"Month-end cost forecast over budget for {WHO}",
        description=(f"{WHO}: at this month's pace it will spend {VALUE} of its monthly budget "
                     "(<SEV> above <T> for <FOR>)."),
        title="Tenant cost forecast over budget",
        fixture=fx.gauge_pair(FORECAST, BUDGET, total=1000), unit="ratio",
    )
    b.threshold(
        key="cost_budget_used_ratio", name="TenantBudgetExceeded", component="budget",
        value=f"{BUDGET_USED}{{{REAL}}}", op=">=", sample=TENANT,
        summary=f"Monthly budget spent for {WHO}",
        description=(f"{WHO}: month-to-date spend is {VALUE} of its monthly budget (<SEV> at <T> for <FOR>); "
                     "`tenant:budget_exceeded` is 1, the platform's kill switch may act on it."),
        title="Tenant budget exceeded",
        fixture=fx.gauge(BUDGET_USED), unit="ratio",
    )
