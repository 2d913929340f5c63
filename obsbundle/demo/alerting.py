"""The demo's alerting: the generated rules and routing under a short-`for` profile, every
receiver pointed at the loopback notification sink.

Only durations change (`for`, group waits), never thresholds, windows or routing, so what fires
here is what would page in production, minutes sooner.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from obsbundle import config as config_mod
from obsbundle.services import NotificationSink

PROFILE = {"for_scale": 0.02, "group_wait": "5s", "group_interval": "10s", "repeat_interval": "1h"}
ROUTING_KEY = "demo-routing-key-not-a-secret"


def demo_config(cfg: dict[str, Any], sink: NotificationSink, workdir: Path) -> dict[str, Any]:
    """`cfg` with the demo profile and the sink as Slack, PagerDuty, email and dead man's switch."""
    secrets = workdir / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    files = {"slack_url": f"{sink.url}/slack", "deadman_url": f"{sink.url}/deadman", "pd_key": ROUTING_KEY}
    for name, text in files.items():
        (secrets / name).write_text(text + "\n")
    out = copy.deepcopy(cfg)
    alerting = out.setdefault("alerting", {})
    alerting.update(PROFILE)
    alerting["slack"] = {**alerting.get("slack", {}), "api_url_file": str(secrets / "slack_url")}
    alerting["email"] = {**alerting.get("email", {}), "smarthost": sink.smarthost, "require_tls": False,
                         "auth_username": None, "auth_password_file": None}
    alerting["pagerduty"] = {**alerting.get("pagerduty", {}), "routing_key_file": str(secrets / "pd_key"),
                             "url": f"{sink.url}/pagerduty"}
    alerting["watchdog"] = {**alerting.get("watchdog", {}), "url_file": str(secrets / "deadman_url")}
    return config_mod.parse(yaml.safe_dump(out))


def write_alerting_files(cfg: dict[str, Any], workdir: Path) -> tuple[Path, list[Path]]:
    """Render the rules and alertmanager.yml for `cfg` into `workdir`; (alertmanager.yml, rule files)."""
    from generators import render_all

    for path, text in render_all(cfg).items():
        if path.startswith("alerts/"):
            (workdir / path).parent.mkdir(parents=True, exist_ok=True)
            (workdir / path).write_text(text)
    return workdir / "alerts/alertmanager.yml", sorted((workdir / "alerts/rules").glob("*.rules.yaml"))
