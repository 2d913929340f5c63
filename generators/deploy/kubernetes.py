"""Kubernetes manifests: per exporter a hardened Deployment, a Service and a ServiceMonitor (the
probes exporter gets a ScrapeConfig: its targets are the uptime checks), a PodMonitor for the API,
the config as a ConfigMap whose connection strings come from a Secret, the Alertmanager config as
a Secret reference, a Grafana data source, the scaling PrometheusRule, the HPA and the KEDA
ScaledObject. Dashboards ship as ConfigMaps from generators/dashboards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from generators.deploy import prometheus, signals
from obsbundle.config import parse_duration

DIR = "deploy/kubernetes"
PART_OF = {"app.kubernetes.io/part-of": "obsbundle"}
SECRET = "obsbundle-secrets"
CONFIG_MAP = "obsbundle-config"
CONFIG_MOUNT = "/etc/obsbundle"
# Fields of a source holding where (and as whom) to connect: they come from the Secret.
SECRET_FIELDS = ("dsn", "url", "address", "metrics_url")
RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}


def _name(kind: str) -> str:
    return f"obsbundle-exporter-{kind}"


def _labels(kind: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": _name(kind), "app.kubernetes.io/component": "exporter", **PART_OF}


def _meta(config: Mapping[str, Any], name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": config["deploy"]["namespace"], "labels": dict(labels or PART_OF)}


def env_var(kind: str, source: str, field: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", f"OBSBUNDLE_{kind}_{source}_{field}".upper())


def secret_key(kind: str, source: str, field: str) -> str:
    return f"{kind}-{source}-{field}".replace("_", "-")


def secret_refs(config: Mapping[str, Any], kind: str) -> list[tuple[str, str]]:
    """(env var, Secret key) for every connection field of the kind's sources."""
    return [(env_var(kind, s["name"], f), secret_key(kind, s["name"], f))
            for s in config["sources"].get(kind) or [] for f in SECRET_FIELDS if f in s and kind != "probes"]


def exporter_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The exporters' config file: tenancy, sources and exporter settings; connection fields read
    `${VAR}` from the Secret-backed environment."""
    sources: dict[str, Any] = {}
    for kind, entries in config["sources"].items():
        sources[kind] = []
        for source in entries or []:
            entry = dict(source)
            if kind != "probes":
                for field in SECRET_FIELDS:
                    if field in entry:
                        entry[field] = "${" + env_var(kind, source["name"], field) + "}"
            sources[kind].append(entry)
    return {"tenancy": config["tenancy"], "sources": sources, "exporter": config["exporter"]}


def _port(config: Mapping[str, Any], kind: str) -> int:
    return int(config["exporter"]["listen_addresses"][kind].rsplit(":", 1)[1])


def deployment(config: Mapping[str, Any], kind: str) -> dict[str, Any]:
    port = _port(config, kind)
    probe = {"httpGet": {"path": "/-/healthy", "port": "metrics"}, "periodSeconds": 10, "timeoutSeconds": 5}
    container = {
        "name": "exporter",
        "image": config["deploy"]["image"],
        "args": ["exporter", kind, "--config", f"{CONFIG_MOUNT}/obsbundle.yaml",
                 "--web.listen-address", f"0.0.0.0:{port}"],
        "ports": [{"name": "metrics", "containerPort": port, "protocol": "TCP"}],
        "env": [{"name": var, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}}
                for var, key in secret_refs(config, kind)],
        "resources": RESOURCES,
        "livenessProbe": probe,
        "readinessProbe": {**probe, "httpGet": {"path": "/-/ready", "port": "metrics"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(config, _name(kind), _labels(kind)),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": _name(kind)}},
            "template": {
                "metadata": {"labels": _labels(kind)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": CONFIG_MAP}},
                                {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def service(config: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": _meta(config, _name(kind), _labels(kind)),
        "spec": {"selector": {"app.kubernetes.io/name": _name(kind)},
                 "ports": [{"name": "metrics", "port": _port(config, kind), "targetPort": "metrics"}]},
    }


def service_monitor(config: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": _meta(config, _name(kind), _labels(kind)),
        "spec": {"jobLabel": "app.kubernetes.io/component",
                 "selector": {"matchLabels": {"app.kubernetes.io/name": _name(kind)}},
                 "endpoints": [{"port": "metrics", "path": "/metrics", "interval": config["deploy"]["scrape_interval"],
                                "relabelings": [{"targetLabel": "job", "replacement": kind, "action": "replace"}]}]},
    }


def scrape_config(config: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The uptime checks: the probes exporter's Service as a static target, job `probes`."""
    target = f"{_name(kind)}.{config['deploy']['namespace']}.svc:{_port(config, kind)}"
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "ScrapeConfig",
        "metadata": _meta(config, _name(kind), _labels(kind)),
        "spec": {"jobName": kind, "scrapeInterval": config["deploy"]["scrape_interval"], "metricsPath": "/metrics",
                 "staticConfigs": [{"targets": [target], "labels": {"job": kind}}]},
    }


def pod_monitor(config: Mapping[str, Any]) -> dict[str, Any]:
    api = config["deploy"]["scaling"]["api_deployment"]
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": _meta(config, api),
        "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": api}},
                 "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics",
                                          "interval": config["deploy"]["scrape_interval"],
                                          "relabelings": [{"targetLabel": "job", "replacement": prometheus.APP_JOB,
                                                           "action": "replace"}]}]},
    }


def config_map(config: Mapping[str, Any], dump: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(config, CONFIG_MAP),
            "data": {"obsbundle.yaml": dump(exporter_config(config))}}


def alertmanager(config: Mapping[str, Any]) -> dict[str, Any]:
    """Alertmanager (Prometheus Operator) whose config is the Secret made from alerts/alertmanager.yml;
    the Slack URL and PagerDuty key files come from a second Secret mounted next to it."""
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "Alertmanager", "metadata": _meta(config, "obsbundle"),
        "spec": {"replicas": 2, "configSecret": "obsbundle-alertmanager", "secrets": ["obsbundle-alerting"],
                 "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "fsGroup": 65534}},
    }


def datasource(config: Mapping[str, Any], dump: Any) -> dict[str, Any]:
    """The linked data sources of generators/datasources when configured, else the store alone."""
    from generators import datasources as linked

    sources = linked.datasources(config) if config.get("datasources") else [{
        "name": "Prometheus", "uid": config["dashboards"]["datasource_uid"], "type": "prometheus",
        "access": "proxy", "url": config["deploy"]["query_url"], "isDefault": True}]
    ds = {"apiVersion": 1, "datasources": sources}
    labels = {**PART_OF, "grafana_datasource": "1"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(config, "obsbundle-datasource", labels),
            "data": {"obsbundle-datasource.yaml": dump(ds)}}


def scaling_rule(config: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": _meta(config, "obsbundle-scaling", {**PART_OF, "role": "alert-rules"}),
            "spec": {"groups": [signals.signal_group(config)]}}


def _behavior(scaling: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "scaleUp": {"stabilizationWindowSeconds": int(parse_duration(scaling["cpu_scale_up_for"])),
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": int(parse_duration(scaling["cpu_scale_down_for"])),
                      "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
    }


def hpa(config: Mapping[str, Any]) -> dict[str, Any]:
    s = config["deploy"]["scaling"]

    def resource(name: str, ratio: float) -> dict[str, Any]:
        return {"type": "Resource", "resource": {"name": name, "target": {
            "type": "Utilization", "averageUtilization": round(ratio * 100)}}}

    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(config, s["api_deployment"]),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": s["api_deployment"]},
            "minReplicas": s["min_replicas"], "maxReplicas": s["max_replicas"],
            "metrics": [resource("cpu", s["cpu_target_ratio"]), resource("memory", s["memory_target_ratio"])],
            "behavior": _behavior(s),
        },
    }


def scaled_object(config: Mapping[str, Any]) -> dict[str, Any]:
    s = config["deploy"]["scaling"]
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": _meta(config, s["worker_deployment"]),
        "spec": {
            "scaleTargetRef": {"name": s["worker_deployment"]},
            "minReplicaCount": s["min_replicas"], "maxReplicaCount": s["max_replicas"],
            "pollingInterval": 30,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior(s)}},
            "triggers": [{"type": "prometheus", "metadata": {
                "serverAddress": config["deploy"]["query_url"],
                "query": f"sum({signals.BACKLOG})",
                "threshold": str(s["backlog_per_replica"]),
            }}],
        },
    }


def manifests(config: Mapping[str, Any], dump: Any) -> dict[str, list[dict[str, Any]]]:
    """file -> the objects it holds."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in prometheus.jobs(config):
        if kind not in config["exporter"]["listen_addresses"]:
            continue
        monitor = scrape_config(config, kind) if kind == "probes" else service_monitor(config, kind)
        out[f"{DIR}/exporter-{kind}.yaml"] = [deployment(config, kind), service(config, kind), monitor]
    out[f"{DIR}/app-podmonitor.yaml"] = [pod_monitor(config)]
    out[f"{DIR}/config.yaml"] = [config_map(config, dump)]
    out[f"{DIR}/alertmanager.yaml"] = [alertmanager(config)]
    out[f"{DIR}/grafana-datasource.yaml"] = [datasource(config, dump)]
    out[f"{DIR}/scaling-prometheusrule.yaml"] = [scaling_rule(config)]
    out[f"{DIR}/autoscaling.yaml"] = [hpa(config), scaled_object(config)]
    return out


def render(config: Mapping[str, Any], header: str, dump: Any) -> dict[str, str]:
    return {path: header + "---\n".join(dump(o) for o in objects) for path, objects in manifests(config, dump).items()}
