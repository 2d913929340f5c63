"""SLO and error budget: availability and latency SLIs over the configured window (`slo`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.alerts.recording import error_ratio as recorded_errors
from generators.alerts.recording import probe_availability, requests_rate, slow_ratio
from generators.dashboards.builder import Board, Q, Thresholds, stat, timeseries
from generators.queries import DURATION, REQUESTS, TENANT, error_ratio, le_matcher, rate

# Burn rate 1 spends the budget exactly over the SLO window; 14.4 is the fast-burn factor of the
# multiwindow alerting scheme (2% of a 30-day budget in one hour).
BURN = Thresholds((("green", 0), ("orange", 1), ("red", 14.4)))
BUDGET = Thresholds((("red", 0), ("orange", 0.1), ("green", 0.5)))
PROBES = 'tenant_id=~"$tenant_id|_shared"'


def _number(value: float) -> str:
    return f"{float(value):g}"


def board(config: Mapping[str, Any]) -> Board:
    slo = config.get("slo", {})
    window = slo.get("window", "30d")
    availability = float(slo.get("availability", {}).get("objective", 0.99))
    latency_objective = float(slo.get("latency", {}).get("objective", 0.95))
    threshold = float(slo.get("latency", {}).get("threshold_seconds", 2))
    allowed_errors = _number(1 - availability)
    allowed_slow = _number(1 - latency_objective)
    le = le_matcher(threshold)

    def good_latency(labels: str = "", w: str = window) -> str:
        by = f" by ({labels})" if labels else ""
        return (f"sum{by} (increase({DURATION}_bucket{{{TENANT}, {le}}}[{w}]))"
                f" / sum{by} (increase({DURATION}_count{{{TENANT}}}[{w}]))")

    # Over the SLO window the panels read the recording rules (generators/alerts/recording.py), evaluated
    # once per rule interval; a selection's ratio is the request-weighted mean of its tenants' ratios.
    requests = f"{requests_rate(window)}{{{TENANT}}}"

    def weighted(record: str) -> str:
        # `> 0`: a tenant without requests in the window has a NaN ratio; it weighs nothing
        return f"sum({record}{{{TENANT}}} * ({requests} > 0)) / sum({requests})"

    sli_th = Thresholds((("red", 0), ("green", availability)))
    latency_th = Thresholds((("red", 0), ("green", latency_objective)))
    summary = [
        stat(f"Availability ({window})", f"Share of requests not answered 5xx over the SLO window ({window}). "
             f"Objective: {availability:g} (`slo.availability.objective`).",
             Q(f"1 - {weighted(recorded_errors(window))}"), unit="percentunit", th=sli_th, w=6, graph=False),
        stat("Availability budget left", f"Error budget remaining over {window}: 1 - error ratio / "
             f"{allowed_errors}. Below 0 the objective is missed.",
             Q(f"1 - ({weighted(recorded_errors(window))}) / {allowed_errors}"), unit="percentunit", th=BUDGET, w=6,
             graph=False),
        stat(f"Requests under {threshold:g}s ({window})", f"Share of requests faster than "
             f"`slo.latency.threshold_seconds` ({threshold:g}s) over {window}. Objective: {latency_objective:g}.",
             Q(f"1 - {weighted(slow_ratio(window))}"), unit="percentunit", th=latency_th, w=6, graph=False),
        stat("Latency budget left", f"Latency budget remaining over {window}: 1 - slow share / {allowed_slow}.",
             Q(f"1 - ({weighted(slow_ratio(window))}) / {allowed_slow}"), unit="percentunit", th=BUDGET, w=6,
             graph=False),
    ]
    burn = [
        timeseries("Availability burn rate", f"Error ratio / allowed error ratio ({allowed_errors}) over 1h and "
                   "6h. 1 spends the budget exactly over the window; 14.4 over 1h is a fast burn.",
                   Q(f"({error_ratio(window='1h')}) / {allowed_errors}", "1h"),
                   Q(f"({error_ratio(window='6h')}) / {allowed_errors}", "6h"), unit="short", th=BURN),
        timeseries("Latency burn rate", f"Slow share / allowed slow share ({allowed_slow}) over 1h and 6h.",
                   Q(f"(1 - {good_latency(w='1h')}) / {allowed_slow}", "1h"),
                   Q(f"(1 - {good_latency(w='6h')}) / {allowed_slow}", "6h"), unit="short", th=BURN),
    ]
    tenants = [
        timeseries("Availability by tenant", f"Per-tenant share of requests not answered 5xx over {window}.",
                   Q(f"1 - {recorded_errors(window)}{{{TENANT}}}", "{{tenant_id}}"),
                   unit="percentunit", th=sli_th, max=1),
        timeseries("Availability budget left by tenant", f"Per-tenant error budget remaining over {window}.",
                   Q(f"1 - {recorded_errors(window)}{{{TENANT}}} / {allowed_errors}", "{{tenant_id}}"),
                   unit="percentunit", th=BUDGET, max=1),
        timeseries(f"Requests under {threshold:g}s by tenant", f"Per-tenant share of requests faster than "
                   f"{threshold:g}s over {window}.", Q(f"1 - {slow_ratio(window)}{{{TENANT}}}", "{{tenant_id}}"),
                   unit="percentunit", th=latency_th, max=1),
        timeseries("Error ratio by tenant (short term)", "5xx share per tenant over the rate interval: where "
                   "the budget is being spent right now.",
                   Q(error_ratio("tenant_id"), "{{tenant_id}}"), unit="percentunit", min=0),
    ]
    probes = [
        timeseries(f"Probe availability ({window})", "Share of successful checks per uptime probe over the SLO "
                   "window (selected tenants' and platform-wide probes).",
                   Q(f"avg by (probe) ({probe_availability(window)}{{{PROBES}}})", "{{probe}}"),
                   unit="percentunit", th=sli_th, max=1),
        timeseries("Request volume", "Requests per second behind the SLIs; a low volume makes ratios noisy.",
                   Q(rate(REQUESTS), "requests"), unit="reqps"),
    ]
    return Board(
        slug="slo-budget",
        title="SLO and error budget",
        description=f"Availability (non-5xx) and latency (< {threshold:g}s) service level indicators over "
                    f"{window} against the objectives in the config `slo` section, error budgets and burn rates.",
        tenant_metric=REQUESTS,
        sections=[("Objectives", summary), ("Burn rate", burn), ("By tenant", tenants), ("Probes", probes)],
        related=("application", "tenant", "infrastructure"),
        tags=("slo",),
    )
