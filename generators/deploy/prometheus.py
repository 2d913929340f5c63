"""Prometheus configuration in two shapes: one node that scrapes and evaluates the rules, or N
agent-mode shards that split the targets by `hashmod` on the address and remote_write to a store.

Every shard adds `cluster` and `shard` external labels. The rules aggregate `by (tenant_id)` or
`by (server)`, which drops both, so a figure does not split by shard (tests/test_scaleout.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

SINGLE_FILE = "deploy/prometheus/prometheus.yml"
APP_JOB = "app"


def shard_file(shard: int) -> str:
    return f"deploy/prometheus/agent-shard-{shard}.yml"


def jobs(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """job -> static targets: each configured exporter (probes included) and the app."""
    deploy = config["deploy"]
    listen = config["exporter"]["listen_addresses"]
    kinds = [kind for kind in listen if config.get("sources", {}).get(kind)]
    out = {kind: list(deploy["targets"].get(kind) or [listen[kind]]) for kind in kinds}
    if deploy["targets"].get(APP_JOB):
        out[APP_JOB] = list(deploy["targets"][APP_JOB])
    for job, targets in deploy["targets"].items():
        if targets:
            out.setdefault(job, list(targets))
    return {job: targets for job, targets in out.items() if targets}


def scrape_configs(config: Mapping[str, Any], shard: int | None = None) -> list[dict[str, Any]]:
    shards = config["deploy"]["shards"]
    out = []
    for job, targets in jobs(config).items():
        scrape: dict[str, Any] = {"job_name": job, "static_configs": [{"targets": targets}]}
        if shard is not None:
            scrape["relabel_configs"] = [
                {"source_labels": ["__address__"], "modulus": shards, "target_label": "__tmp_hash",
                 "action": "hashmod"},
                {"source_labels": ["__tmp_hash"], "regex": str(shard), "action": "keep"},
            ]
        out.append(scrape)
    return out


def single_node(config: Mapping[str, Any]) -> dict[str, Any]:
    deploy = config["deploy"]
    am = urlsplit(deploy["alertmanager_url"])
    return {
        "global": {"scrape_interval": deploy["scrape_interval"], "evaluation_interval": deploy["evaluation_interval"],
                   "external_labels": {"cluster": deploy["cluster"]}},
        "rule_files": [f"{deploy['rules_dir']}/*.rules.yaml"],
        "alerting": {"alertmanagers": [{"scheme": am.scheme, "path_prefix": am.path or "/",
                                        "static_configs": [{"targets": [am.netloc]}]}]},
        "scrape_configs": scrape_configs(config),
    }


def agent_shard(config: Mapping[str, Any], shard: int) -> dict[str, Any]:
    """Run with `prometheus --enable-feature=agent`: no rules or alerting, only scrape and forward."""
    deploy = config["deploy"]
    return {
        "global": {"scrape_interval": deploy["scrape_interval"],
                   "external_labels": {"cluster": deploy["cluster"], "shard": str(shard)}},
        "scrape_configs": scrape_configs(config, shard),
        "remote_write": [{"url": deploy["remote_write_url"]}],
    }


def hashmod(address: str, modulus: int) -> int:
    """The shard Prometheus's `hashmod` relabel action assigns `address` to (md5, low 8 bytes)."""
    import hashlib

    digest = hashlib.md5(address.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % modulus


def render(config: Mapping[str, Any], header: str, dump: Any) -> dict[str, str]:
    files = {SINGLE_FILE: header + dump(single_node(config))}
    for shard in range(config["deploy"]["shards"]):
        files[shard_file(shard)] = header + dump(agent_shard(config, shard))
    return files
