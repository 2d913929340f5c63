"""Platform overview / infrastructure health: targets, hosts (node_exporter), probes, headline SLIs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.dashboards.builder import Board, Q, Thresholds, stat, thresholds, timeseries
from generators.queries import DURATION, REQUESTS, RI, error_ratio, quantile, rate

UP = Thresholds((("red", 0), ("green", 1)))
FS = 'fstype!~"tmpfs|overlay|squashfs|ramfs|nsfs|fuse.*", mountpoint!~"/(run|sys|proc|dev)($|/.*)"'
NIC = 'device!~"lo|veth.*|docker.*|br-.*|cni.*|flannel.*|ifb.*"'
PROBES = 'tenant_id=~"$tenant_id|_shared"'


def board(config: Mapping[str, Any]) -> Board:
    status = [
        stat("Targets down", "Scrape targets Prometheus could not reach in the last scrape (`up == 0`), "
             "every job: exporters, node_exporter, the API services.",
             Q("count(up == 0) or vector(0)"), unit="short", th=thresholds(config, "target_down"), w=3, graph=False),
        stat("Data stores reachable", "1 when the obsbundle exporter reached the store in its last scrape "
             "(pg_up, redis_up, temporal_up; the lowest over all configured servers).",
             Q('min(pg_up{tenant_id="_shared"})', "PostgreSQL"), Q('min(redis_up{tenant_id="_shared"})', "Redis"),
             Q('min(temporal_up{tenant_id="_shared"})', "Temporal"), unit="bool_yes_no", th=UP, w=6, graph=False),
        stat("Probes succeeding", "Share of uptime probes (selected tenants' and platform-wide) whose last check "
             "succeeded. Thresholds: `thresholds.probe_failure` (below 1 is a failing probe).",
             Q(f"avg(probe_success{{{PROBES}}})"), unit="percentunit",
             th=thresholds(config, "probe_failure", below=True), w=3),
        stat("TLS certificate expiry", "Days until the soonest-expiring certificate served to an https uptime "
             "probe expires. Thresholds: `thresholds.cert_expiry_days` (low is bad).",
             Q(f"min(probe_tls_cert_expiry_days{{{PROBES}}})"), unit="d",
             th=thresholds(config, "cert_expiry_days", below=True), graph=False),
        stat("Request rate", "HTTP requests per second served by the API services for the selected tenants.",
             Q(rate(REQUESTS)), unit="reqps"),
        stat("API error ratio", "Share of requests answered 5xx, selected tenants. Thresholds: "
             "`thresholds.error_ratio` (the alert's).", Q(error_ratio()), unit="percentunit",
             th=thresholds(config, "error_ratio")),
    ]
    hosts = [
        timeseries("CPU used", "Share of CPU time not idle, per host (node_cpu_seconds_total). Dashed line: "
                   "`thresholds.cpu_used_ratio`.",
                   Q(f'1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[{RI}]))', "{{instance}}"),
                   unit="percentunit", th=thresholds(config, "cpu_used_ratio"), min=0, max=1, w=8),
        timeseries("Load per CPU", "1-minute load average divided by the host's CPU count; above 1 means "
                   "runnable tasks wait for a CPU.",
                   Q('node_load1 / on (instance) count by (instance) (node_cpu_seconds_total{mode="idle"})',
                     "{{instance}}"), unit="short", w=8),
        timeseries("Memory used", "1 - MemAvailable / MemTotal per host. Dashed lines: "
                   "`thresholds.memory_used_ratio`.",
                   Q("1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes", "{{instance}}"),
                   unit="percentunit", th=thresholds(config, "memory_used_ratio"), min=0, max=1, w=8),
        timeseries("Disk free", "Free space available to non-root users per filesystem (pseudo filesystems "
                   "excluded). Dashed lines: `thresholds.disk_free_ratio` (low is bad).",
                   Q(f"node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}}",
                     "{{instance}} {{mountpoint}}"),
                   unit="percentunit", th=thresholds(config, "disk_free_ratio", below=True), min=0, max=1, w=8),
        timeseries("Disk full in", "Hours until each filesystem is full at the rate of the last 6h (the "
                   "disk-will-fill alert's prediction; capped at a year when not filling). Dashed lines: "
                   "`thresholds.disk_fill_hours` (low is bad).",
                   Q(f"clamp_max(min by (instance, mountpoint) (node_filesystem_avail_bytes{{{FS}}}"
                     f" / clamp_min(-deriv(node_filesystem_avail_bytes{{{FS}}}[6h]), 1e-09)) / 3600, 8760)",
                     "{{instance}} {{mountpoint}}"),
                   unit="h", th=thresholds(config, "disk_fill_hours", below=True), w=8),
        timeseries("Disk busy", "Share of time each block device was busy with I/O (io_time); near 100% "
                   "means the device is saturated.",
                   Q(f"rate(node_disk_io_time_seconds_total[{RI}])", "{{instance}} {{device}}"),
                   unit="percentunit", min=0, w=8),
        timeseries("Disk throughput", "Bytes read and written per second per host, all block devices.",
                   Q(f"sum by (instance) (rate(node_disk_read_bytes_total[{RI}]))", "{{instance}} read"),
                   Q(f"sum by (instance) (rate(node_disk_written_bytes_total[{RI}]))", "{{instance}} write"),
                   unit="Bps", w=8),
        timeseries("Network traffic", "Bytes received and sent per second per host (loopback and virtual "
                   "interfaces excluded).",
                   Q(f"sum by (instance) (rate(node_network_receive_bytes_total{{{NIC}}}[{RI}]))",
                     "{{instance}} in"),
                   Q(f"sum by (instance) (rate(node_network_transmit_bytes_total{{{NIC}}}[{RI}]))",
                     "{{instance}} out"),
                   unit="Bps", w=8),
        timeseries("Network errors and drops", "Receive/transmit errors and drops per second per host; "
                   "any sustained value points at a NIC, driver or buffer problem.",
                   Q(f"sum by (instance) (rate(node_network_receive_errs_total{{{NIC}}}[{RI}])"
                     f" + rate(node_network_transmit_errs_total{{{NIC}}}[{RI}]))", "{{instance}} errors"),
                   Q(f"sum by (instance) (rate(node_network_receive_drop_total{{{NIC}}}[{RI}])"
                     f" + rate(node_network_transmit_drop_total{{{NIC}}}[{RI}]))", "{{instance}} drops"),
                   unit="pps", w=8),
        timeseries("Host uptime", "Time since each host booted; a drop to zero is a reboot.",
                   Q("node_time_seconds - node_boot_time_seconds", "{{instance}}"), unit="s", w=24, h=6),
    ]
    services = [
        timeseries("Scrape targets up", "`up` per scrape job: how many targets of each job answered the last "
                   "scrape.", Q("sum by (job) (up)", "{{job}}"), unit="short", w=8),
        timeseries("Probe duration", "Wall time of the last check of each uptime probe (selected tenants and "
                   "platform-wide).", Q(f"max by (probe) (probe_duration_seconds{{{PROBES}}})", "{{probe}}"),
                   unit="s", w=8),
        timeseries("API p95 latency", "95th percentile HTTP request duration, selected tenants. Dashed lines: "
                   "`thresholds.latency_p95_seconds`.", Q(quantile(0.95, DURATION), "p95"),
                   unit="s", th=thresholds(config, "latency_p95_seconds"), w=8),
    ]
    collectors = [
        timeseries("Collector success", "1 when each obsbundle collector's last run succeeded inside its "
                   "budget; a failing collector leaves its figures missing for every tenant. Dashed lines: "
                   "`thresholds.collector_failing`.",
                   Q("min by (exporter, collector) (obsbundle_collector_success)", "{{exporter}} {{collector}}"),
                   unit="bool_yes_no", th=thresholds(config, "collector_failing", below=True), min=0, max=1),
        timeseries("Collector duration", "Wall time of each collector's last run (scrape or background refresh).",
                   Q("max by (exporter, collector) (obsbundle_collector_duration_seconds)",
                     "{{exporter}} {{collector}}"), unit="s"),
    ]
    return Board(
        slug="infrastructure",
        title="Platform overview / infrastructure health",
        description="Is the platform up? Scrape targets, data stores, uptime probes and host CPU, memory, "
                    "disk and network (node_exporter).",
        tenant_metric=REQUESTS,
        sections=[("Status", status), ("Hosts", hosts), ("Services", services), ("obsbundle exporters", collectors)],
        related=("application", "postgresql", "redis", "temporal", "slo-budget"),
        tags=("infrastructure",),
    )
