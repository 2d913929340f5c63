"""Uptime probe metrics served by `obsbundle exporter probes` (one probe per `sources.probes` entry).

`probe` is the probe's configured name; `tenant_id` is its owning tenant, or `_shared` for a
platform-wide endpoint (landing page, public API health).
"""

from obsbundle.catalog import declare

SOURCE = "probes"
LABELS = ("probe", "tenant_id")

# The fixed set of `reason` values; anything unexpected is `other`.
REASONS = ("ok", "timeout", "connection_refused", "dns", "tls", "http_status", "other")
# httpx trace phases, in request order (DNS resolution is inside `connect` for httpx).
PHASES = ("connect", "tls", "request", "processing", "transfer")

SUCCESS = declare(
    "probe_success", "gauge",
    "1 if the last check got an expected HTTP status in time, else 0.",
    LABELS, source=SOURCE,
)
DURATION = declare(
    "probe_duration_seconds", "gauge",
    "Total wall time of the last check, including failed ones (bounded by the probe timeout).",
    LABELS, source=SOURCE, unit="seconds",
)
PHASE_DURATION = declare(
    "probe_http_phase_duration_seconds", "gauge",
    "Wall time of each phase of the last check: connect (incl. DNS), tls, request, processing, transfer.",
    (*LABELS, "phase"), source=SOURCE, unit="seconds",
)
STATUS_CODE = declare(
    "probe_http_status_code", "gauge",
    "HTTP status code of the last check's response; 0 if no response arrived.",
    LABELS, source=SOURCE,
)
CERT_EXPIRY = declare(
    "probe_tls_cert_expiry_days", "gauge",
    "Days until the served TLS leaf certificate expires (negative once expired); https probes only.",
    LABELS, source=SOURCE, unit="days",
)
FAILURE = declare(
    "probe_failure_info", "info",
    "Outcome of the last check as a reason label: ok, timeout, connection_refused, dns, tls, "
    "http_status or other.",
    (*LABELS, "reason"), source=SOURCE,
)
