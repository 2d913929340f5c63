"""Autoscaling signals as recording rules (alerts/rules/scaling.rules.yaml) and the promtool tests
that prove each one's value on known series (alerts/tests/scaling.test.yaml).

The HPA reads CPU and memory from metrics-server; these rules put the same utilisation figures,
the DB-connection headroom and the Temporal backlog in the store, where dashboards and the KEDA
trigger read them. Thresholds are not baked in: the manifests take them from config `deploy.scaling`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.alerts.rulefiles import HEADER, dump

RULE_FILE = "alerts/rules/scaling.rules.yaml"
TEST_FILE = "alerts/tests/scaling.test.yaml"
CPU = "api:cpu_utilisation:ratio_rate5m"
MEMORY = "api:memory_utilisation:ratio"
PG_CONNECTIONS = "server:pg_connections:ratio"
POOL_CONNECTIONS = "server:pgbouncer_pool_connections:ratio"
BACKLOG = "task_queue:temporal_backlog:sum"
BACKLOG_AGE = "task_queue:temporal_backlog_age_seconds:max"
QUEUE = "server, task_queue, task_queue_type"


def signal_rules(config: Mapping[str, Any]) -> list[dict[str, str]]:
    api = f'container="{config["deploy"]["scaling"]["api_container"]}"'
    return [
        {"record": CPU,
         "expr": f"sum by (namespace) (rate(container_cpu_usage_seconds_total{{{api}}}[5m]))"
                 f' / sum by (namespace) (kube_pod_container_resource_requests{{{api}, resource="cpu"}})'},
        {"record": MEMORY,
         "expr": f"sum by (namespace) (container_memory_working_set_bytes{{{api}}})"
                 f' / sum by (namespace) (kube_pod_container_resource_limits{{{api}, resource="memory"}})'},
        {"record": PG_CONNECTIONS,
         "expr": "sum by (server) (pg_connections_in_use) / max by (server) (pg_max_connections)"},
        {"record": POOL_CONNECTIONS,
         "expr": "sum by (server) (pgbouncer_servers_active) / sum by (server) (pgbouncer_pool_size)"},
        {"record": BACKLOG, "expr": f"sum by ({QUEUE}) (temporal_tenant_task_queue_backlog)"},
        {"record": BACKLOG_AGE, "expr": f"max by ({QUEUE}) (temporal_tenant_task_queue_backlog_age_seconds)"},
    ]


def signal_group(config: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": "obsbundle.recording.scaling", "rules": signal_rules(config)}


def _tests(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Two API pods, a PostgreSQL server with a PgBouncer pool per tenant, two tenants' queues."""
    c = config["deploy"]["scaling"]["api_container"]
    pod = 'namespace="prod", container="' + c + '", pod="api-{}"'
    queue = 'server="main", task_queue="orders", task_queue_type="workflow", tenant_id="{}"'
    series = [
        # 0.3 and 0.5 cores used (18 and 30 CPU-seconds a minute) of 0.5 requested each: 0.8
        (f"container_cpu_usage_seconds_total{{{pod.format(1)}}}", "0+18x20"),
        (f"container_cpu_usage_seconds_total{{{pod.format(2)}}}", "0+30x20"),
        (f'kube_pod_container_resource_requests{{{pod.format(1)}, resource="cpu", unit="core"}}', "0.5x20"),
        (f'kube_pod_container_resource_requests{{{pod.format(2)}, resource="cpu", unit="core"}}', "0.5x20"),
        # 400 MB + 500 MB working set of 1000 MB limits each: 0.45
        (f"container_memory_working_set_bytes{{{pod.format(1)}}}", "400000000x20"),
        (f"container_memory_working_set_bytes{{{pod.format(2)}}}", "500000000x20"),
        (f'kube_pod_container_resource_limits{{{pod.format(1)}, resource="memory", unit="byte"}}', "1000000000x20"),
        (f'kube_pod_container_resource_limits{{{pod.format(2)}, resource="memory", unit="byte"}}', "1000000000x20"),
        # 40 of 50 connections in use (a tenant's 30 and the shared 10): 0.8
        ('pg_connections_in_use{server="main", tenant_id="_shared"}', "40x20"),
        ('pg_max_connections{server="main", tenant_id="_shared"}', "50x20"),
        # PgBouncer: 9 + 3 active server connections of 10 + 10 pool slots: 0.6
        ('pgbouncer_servers_active{server="main", tenant_id="acme"}', "9x20"),
        ('pgbouncer_servers_active{server="main", tenant_id="globex"}', "3x20"),
        ('pgbouncer_pool_size{server="main", tenant_id="acme"}', "10x20"),
        ('pgbouncer_pool_size{server="main", tenant_id="globex"}', "10x20"),
        # one queue name shared by two tenants (their namespaces): backlog 120 + 30, oldest 90 s
        (f"temporal_tenant_task_queue_backlog{{{queue.format('acme')}}}", "120x20"),
        (f"temporal_tenant_task_queue_backlog{{{queue.format('globex')}}}", "30x20"),
        (f"temporal_tenant_task_queue_backlog_age_seconds{{{queue.format('acme')}}}", "90x20"),
        (f"temporal_tenant_task_queue_backlog_age_seconds{{{queue.format('globex')}}}", "15x20"),
    ]
    q = {"server": "main", "task_queue": "orders", "task_queue_type": "workflow"}
    expected = [
        (CPU, {"namespace": "prod"}, 0.8),
        (MEMORY, {"namespace": "prod"}, 0.45),
        (PG_CONNECTIONS, {"server": "main"}, 0.8),
        (POOL_CONNECTIONS, {"server": "main"}, 0.6),
        (BACKLOG, q, 150),
        (BACKLOG_AGE, q, 90),
    ]
    return [{
        "name": "scaling signals on known series",
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series],
        "promql_expr_test": [
            {"expr": name, "eval_time": "10m", "exp_samples": [{"labels": _selector(name, labels), "value": value}]}
            for name, labels, value in expected
        ],
    }]


def _selector(name: str, labels: Mapping[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def render(config: Mapping[str, Any]) -> dict[str, str]:
    tests = {"rule_files": [f"../rules/{RULE_FILE.rsplit('/', 1)[1]}"], "evaluation_interval": "1m",
             "tests": _tests(config)}
    return {
        RULE_FILE: HEADER.replace("generators/alerts", "generators/deploy") + dump({"groups": [signal_group(config)]}),
        TEST_FILE: HEADER.replace("generators/alerts", "generators/deploy") + dump(tests),
    }
