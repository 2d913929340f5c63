"""Throwaway Prometheus, and a client for its HTTP API (instant queries, targets)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml

from obsbundle.services.process import Service, wait_for, which


class PrometheusAPI:
    """The parts of Prometheus's HTTP API the tests and the demo read back through."""

    def __init__(self, url: str) -> None:
        self._base_url = url

    @property
    def url(self) -> str:
        return self._base_url

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr}
        if at is not None:
            params["time"] = str(at)
        response = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body.get('error')}")
        return body["data"]["result"]

    def query_by(self, expr: str, label: str = "tenant_id") -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}

    def wait_query(self, expr: str, predicate: Callable[[list[dict[str, Any]]], bool] = bool,
                   timeout: float = 30.0) -> list[dict[str, Any]]:
        def check() -> list[dict[str, Any]] | None:
            result = self.query(expr)
            return result if predicate(result) else None

        return wait_for(check, timeout, 0.5, what=f"prometheus query {expr!r}")

    def firing_alerts(self) -> list[dict[str, str]]:
        """The label sets of the alerts its rules fire now (what it sends to Alertmanager)."""
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=5).json()
        return [a["labels"] for a in body["data"]["alerts"] if a["state"] == "firing"]

    def exemplars(self, selector: str, start: float, end: float) -> list[dict[str, Any]]:
        """`/api/v1/query_exemplars`: [{seriesLabels, exemplars: [{labels, value, timestamp}]}]."""
        body = httpx.get(f"{self.url}/api/v1/query_exemplars",
                         params={"query": selector, "start": str(start), "end": str(end)}, timeout=10).json()
        if body.get("status") != "success":
            raise AssertionError(f"query_exemplars {selector!r} failed: {body.get('error')}")
        return list(body["data"])

    def targets_up(self) -> bool:
        body = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()
        active = body["data"]["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)


class PrometheusServer(Service, PrometheusAPI):
    """A real Prometheus scraping the given targets every second; `query()` uses its HTTP API."""

    def __init__(
        self,
        targets: dict[str, list[str]],
        rule_files: Iterable[str] = (),
        alertmanager: str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        metrics_path: dict[str, str] | None = None,
        job_settings: dict[str, dict[str, Any]] | None = None,
        features: Iterable[str] = (),
    ) -> None:
        self.features = list(features)  # e.g. "exemplar-storage"
        self._allocate("obsbundle-prom-")  # `url` is Service's, so PrometheusAPI.__init__ is not called
        cfg: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                       "evaluation_interval": evaluation_interval},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": addrs}],
                 **({"metrics_path": metrics_path[job]} if metrics_path and job in metrics_path else {}),
                 **(job_settings or {}).get(job, {})}  # scheme, basic_auth, tls_config...
                for job, addrs in targets.items()
            ],
        }
        if rule_files:
            cfg["rule_files"] = [str(Path(f).resolve()) for f in rule_files]
        if alertmanager:
            cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self.start()

    def start(self) -> None:
        self.proc = self._popen([
            which("prometheus"),
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
            *(f"--enable-feature={feature}" for feature in self.features),
        ])
        self._wait_http("/-/ready", "prometheus")
