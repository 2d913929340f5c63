"""Self-metrics every obsbundle exporter process emits about its own collectors."""

from obsbundle.catalog import declare

SOURCE = "exporter"
LABELS = ("exporter", "server", "collector")

declare(
    "obsbundle_collector_duration_seconds", "gauge",
    "Wall time the collector took in the last scrape or refresh.",
    LABELS, source=SOURCE, unit="seconds",
)
declare(
    "obsbundle_collector_success", "gauge",
    "1 if the collector's last run succeeded inside its budget, else 0.",
    LABELS, source=SOURCE,
)
declare(
    "obsbundle_collector_errors_total", "counter",
    "Failed collector runs since start, by short error code (never a message or DSN).",
    (*LABELS, "code"), source=SOURCE,
)
declare(
    "obsbundle_collector_last_error_info", "info",
    "The short code of the collector's most recent error ('none' after a success).",
    (*LABELS, "code"), source=SOURCE,
)
declare(
    "obsbundle_collector_data_age_seconds", "gauge",
    "Age of the data served for this collector (background refreshes; 0 for on-scrape collectors).",
    LABELS, source=SOURCE, unit="seconds",
)
declare(
    "obsbundle_tenants_admitted", "gauge",
    "Distinct tenant ids admitted under the cardinality cap by this process.",
    ("exporter", "server"), source=SOURCE,
)
declare(
    "obsbundle_tenants_overflowed_total", "counter",
    "Distinct tenant ids refused admission (tenancy.max_tenants or max_volatile_tenants full); each id counts once.",
    ("exporter", "server"), source=SOURCE,
)
declare(
    "obsbundle_build_info", "info",
    "obsbundle version of this exporter process.",
    ("exporter", "version"), source=SOURCE,
)
