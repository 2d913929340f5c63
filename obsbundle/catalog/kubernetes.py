"""kube-state-metrics and cAdvisor metrics the container-health alerts query.

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
