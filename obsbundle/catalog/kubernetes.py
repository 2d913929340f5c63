"""kube-state-metrics and cAdvisor metrics: the container-health alerts and the autoscaling
signals (API CPU and memory against the containers' requests and limits) query them.

Third-party names (`external=True`) under the names those exporters publish. Neither runs on this
machine, so the rules on them are covered by the generated promtool tests only (docs/alerts.md).
Containers carry no `tenant_id`: a pod serves every tenant.
"""

from obsbundle.catalog import declare

T = ("instance", "job")  # added by Prometheus on scrape
CONTAINER = (*T, "namespace", "pod", "container")

declare(
    "kube_pod_container_status_restarts_total", "counter",
    "The number of container restarts per container (kube-state-metrics).",
    CONTAINER, source="kube-state-metrics", external=True,
)
declare(
    "kube_pod_container_status_last_terminated_reason", "gauge",
    "Describes the last reason the container was in terminated state, e.g. OOMKilled (kube-state-metrics).",
    (*CONTAINER, "reason"), source="kube-state-metrics", external=True,
)
declare(
    "kube_pod_container_status_waiting_reason", "gauge",
    "Describes the reason the container is currently in waiting state, e.g. CrashLoopBackOff (kube-state-metrics).",
    (*CONTAINER, "reason"), source="kube-state-metrics", external=True,
)
declare(
    "container_cpu_cfs_periods_total", "counter",
    "Number of elapsed enforcement period intervals (cAdvisor).",
    CONTAINER, source="cadvisor", external=True,
)
declare(
    "container_cpu_cfs_throttled_periods_total", "counter",
    "Number of throttled period intervals (cAdvisor).",
    CONTAINER, source="cadvisor", external=True,
)

CADVISOR = "cadvisor"
KSM = "kube-state-metrics"
POD = ("namespace", "pod", "container")

declare(
    "container_cpu_usage_seconds_total", "counter",
    "Cumulative CPU time consumed by the container (cAdvisor).",
    POD, source=CADVISOR, unit="seconds", external=True,
)
declare(
    "container_memory_working_set_bytes", "gauge",
    "Current working set of the container, the figure the kubelet evicts on (cAdvisor).",
    POD, source=CADVISOR, unit="bytes", external=True,
)
declare(
    "kube_pod_container_resource_requests", "gauge",
    "Resources the container requests, by resource (cpu in cores, memory in bytes).",
    (*POD, "node", "resource", "unit"), source=KSM, external=True,
)
declare(
    "kube_pod_container_resource_limits", "gauge",
    "Resource limits of the container, by resource (cpu in cores, memory in bytes).",
    (*POD, "node", "resource", "unit"), source=KSM, external=True,
)
