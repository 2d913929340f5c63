"""Kubernetes container metrics (cAdvisor via the kubelet, kube-state-metrics) the autoscaling
signals read: API CPU and memory utilisation against the container's requests and limits.

Third-party names (`external=True`), declared so the deploy generator's signals may only query
what those exporters emit. They carry no `tenant_id`: a pod serves every tenant.
"""

from obsbundle.catalog import declare

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
