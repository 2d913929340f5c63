"""node_exporter metrics (Debian's `prometheus-node-exporter`) that dashboards and alerts query.

These are third-party names (`external=True`): declaring them lets the generators' lint refuse a
query on a metric node_exporter does not emit, the same way it does for our own exporters. Labels
are the ones node_exporter exposes plus `instance` and `job`, which Prometheus adds on scrape.
Host metrics carry no `tenant_id`: a host is shared by every tenant.

`up` is Prometheus's own per-target gauge; it is declared here (source "prometheus") because the
infrastructure dashboard and the target-down alert read it for every scrape job.
"""

from obsbundle.catalog import declare

SOURCE = "node"
T = ("instance", "job")  # added by Prometheus on scrape
FS = (*T, "device", "fstype", "mountpoint")
DEV = (*T, "device")

declare(
    "up", "gauge",
    "1 if Prometheus's last scrape of the target succeeded, else 0 (set by Prometheus).",
    T, source="prometheus", external=True,
)

# -- CPU and load -----------------------------------------------------------------------------------
declare(
    "node_cpu_seconds_total", "counter",
    "Seconds the CPUs spent in each mode.",
    (*T, "cpu", "mode"), source=SOURCE, unit="seconds", external=True,
)
for minutes in (1, 5, 15):
    declare(
        f"node_load{minutes}", "gauge", f"{minutes}m load average.",
        T, source=SOURCE, external=True,
    )

# -- memory -----------------------------------------------------------------------------------------
declare(
    "node_memory_MemTotal_bytes", "gauge", "Memory information field MemTotal_bytes.",
    T, source=SOURCE, unit="bytes", external=True,
)
declare(
    "node_memory_MemAvailable_bytes", "gauge", "Memory information field MemAvailable_bytes.",
    T, source=SOURCE, unit="bytes", external=True,
)
declare(
    "node_memory_SwapTotal_bytes", "gauge", "Memory information field SwapTotal_bytes.",
    T, source=SOURCE, unit="bytes", external=True,
)
declare(
    "node_memory_SwapFree_bytes", "gauge", "Memory information field SwapFree_bytes.",
    T, source=SOURCE, unit="bytes", external=True,
)

# -- filesystems ------------------------------------------------------------------------------------
declare(
    "node_filesystem_size_bytes", "gauge", "Filesystem size in bytes.",
    FS, source=SOURCE, unit="bytes", external=True,
)
declare(
    "node_filesystem_avail_bytes", "gauge", "Filesystem space available to non-root users in bytes.",
    FS, source=SOURCE, unit="bytes", external=True,
)
declare(
    "node_filesystem_free_bytes", "gauge", "Filesystem free space in bytes.",
    FS, source=SOURCE, unit="bytes", external=True,
)
declare(
    "node_filesystem_readonly", "gauge", "Filesystem read-only status.",
    FS, source=SOURCE, external=True,
)
declare(
    "node_filesystem_files", "gauge", "Filesystem total file nodes.",
    FS, source=SOURCE, external=True,
)
declare(
    "node_filesystem_files_free", "gauge", "Filesystem total free file nodes.",
    FS, source=SOURCE, external=True,
)

# -- block devices ----------------------------------------------------------------------------------
declare(
    "node_disk_read_bytes_total", "counter", "The total number of bytes read successfully.",
    DEV, source=SOURCE, unit="bytes", external=True,
)
declare(
    "node_disk_written_bytes_total", "counter", "The total number of bytes written successfully.",
    DEV, source=SOURCE, unit="bytes", external=True,
)
declare(
    "node_disk_io_time_seconds_total", "counter", "Total seconds spent doing I/Os.",
    DEV, source=SOURCE, unit="seconds", external=True,
)

# -- network ----------------------------------------------------------------------------------------
for direction in ("receive", "transmit"):
    declare(
        f"node_network_{direction}_bytes_total", "counter",
        f"Network device statistic {direction}_bytes.",
        DEV, source=SOURCE, unit="bytes", external=True,
    )
    declare(
        f"node_network_{direction}_errs_total", "counter",
        f"Network device statistic {direction}_errs.",
        DEV, source=SOURCE, external=True,
    )
    declare(
        f"node_network_{direction}_drop_total", "counter",
        f"Network device statistic {direction}_drop.",
        DEV, source=SOURCE, external=True,
    )

# -- host identity and clock ------------------------------------------------------------------------
declare(
    "node_boot_time_seconds", "gauge", "Node boot time, in unixtime.",
    T, source=SOURCE, unit="seconds", external=True,
)
declare(
    "node_time_seconds", "gauge", "System time in seconds since epoch (1970).",
    T, source=SOURCE, unit="seconds", external=True,
)
declare(
    "node_uname_info", "info", "Labeled system information as provided by the uname system call.",
    (*T, "domainname", "machine", "nodename", "release", "sysname", "version"),
    source=SOURCE, external=True,
)
