"""systemd units, one per exporter, sandboxed: a dynamic user, read-only system, no new privileges,
loopback and the configured sources reachable only through the address families they need."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.deploy import prometheus

DIR = "deploy/systemd"

SANDBOX = (
    "DynamicUser=yes",
    "ProtectSystem=strict",
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "NoNewPrivileges=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet=",
    "AmbientCapabilities=",
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @resources",
    "UMask=0077",
)


def unit_file(kind: str) -> str:
    return f"{DIR}/obsbundle-exporter-{kind}.service"


def unit(config: Mapping[str, Any], kind: str) -> str:
    deploy = config["deploy"]
    listen = config["exporter"]["listen_addresses"][kind]
    lines = [
        "[Unit]",
        f"Description=obsbundle {kind} exporter (tenant-labelled metrics)",
        "Documentation=man:systemd.exec(5)",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={deploy['bin']} exporter {kind} --config {deploy['config_path']} --web.listen-address {listen}",
        "Restart=on-failure",
        "RestartSec=5s",
        # secrets (DSNs, password files) live in a credentials file only the unit can read
        f"EnvironmentFile=-/etc/obsbundle/{kind}.env",
        *SANDBOX,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def render(config: Mapping[str, Any], header: str) -> dict[str, str]:
    kinds = [k for k in prometheus.jobs(config) if k in config["exporter"]["listen_addresses"]]
    return {unit_file(kind): header + unit(config, kind) for kind in kinds}
