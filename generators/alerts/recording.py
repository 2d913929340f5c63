"""Recording rules: every expression the alerts and SLO dashboards evaluate repeatedly over long
windows is recorded once per tenant, so alert evaluation stays cheap at thousands of tenants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.queries import error_ratio as error_ratio_query
from generators.queries import le_matcher

SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
REQUESTS = "http_server_requests_total"
DURATION = "http_server_request_duration_seconds"
ALL_TENANTS = 'tenant_id!=""'  # every series: the recorded ratios keep pseudo-tenants, alerts drop them


def requests_rate(window: str) -> str:
    return f"tenant:http_requests:rate{window}"


def error_ratio(window: str) -> str:
    return f"tenant:http_request_errors:ratio_rate{window}"


def slow_ratio(window: str) -> str:
    return f"tenant:http_request_slow:ratio_rate{window}"


def latency_quantile(q: str, window: str) -> str:
    return f"tenant:http_request_duration_seconds:{q}_rate{window}"


def recording_groups(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One group per window, so Prometheus evaluates each window's rules together and in order."""
    threshold = float(config["slo"]["latency"]["threshold_seconds"])
    le = le_matcher(threshold)
    groups = []
    for window in (*SLO_WINDOWS, *slo_dashboard_windows(config)):
        rules = [
            {"record": requests_rate(window),
             "expr": f"sum by (tenant_id) (rate({REQUESTS}[{window}]))"},
            {"record": error_ratio(window),
             "expr": error_ratio_query("tenant_id", selector=ALL_TENANTS, window=window)},
            {"record": slow_ratio(window),
             "expr": (f"1 - sum by (tenant_id) (rate({DURATION}_bucket{{{le}}}[{window}]))"
                      f" / sum by (tenant_id) (rate({DURATION}_count[{window}]))")},
            {"record": latency_quantile("p95", window),
             "expr": f"histogram_quantile(0.95, sum by (tenant_id, le) (rate({DURATION}_bucket[{window}])))"},
        ]
        if window == "5m":
            rules += [
                {"record": latency_quantile(q, window),
                 "expr": f"histogram_quantile({v}, sum by (tenant_id, le) (rate({DURATION}_bucket[{window}])))"}
                for q, v in (("p50", "0.5"), ("p99", "0.99"))
            ]
        groups.append({"name": f"obsbundle.recording.tenant.{window}", "rules": rules})
    return [*groups, *slo_dashboard_groups(config)]


def recorded_names(config: Mapping[str, Any]) -> set[str]:
    return {r["record"] for g in recording_groups(config) for r in g["rules"]}


# -- The SLO window (`slo.window`, 30d by default), read by the SLO dashboard ------------------------
# Added for the dashboards (generators/dashboards/boards/slo.py): its panels read these series
# instead of evaluating `rate(...[30d])` at every step of every refresh. The SLO window gets the same
# per-tenant rules as the alert windows above (loop in `recording_groups`), plus probe availability.


def slo_dashboard_windows(config: Mapping[str, Any]) -> tuple[str, ...]:
    window = config["slo"]["window"]
    return () if window in SLO_WINDOWS else (window,)


def probe_availability(window: str) -> str:
    return f"tenant_probe:probe_success:avg_over_time{window}"


def slo_dashboard_groups(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    window = config["slo"]["window"]
    return [{"name": f"obsbundle.recording.probes.{window}", "rules": [
        {"record": probe_availability(window),
         "expr": f"avg by (tenant_id, probe) (avg_over_time(probe_success[{window}]))"}]}]
