"""`obsbundle exporter <kind>` as a real subprocess, scraped over HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import httpx
import yaml

from obsbundle.services.metrics_text import Samples, parse_metrics
from obsbundle.services.process import Service, which


class ExporterProcess(Service):
    """`obsbundle exporter <kind>` as a real subprocess on a free port, config written to a file."""

    def __init__(self, kind: str, config: dict[str, Any] | str, extra_args: Iterable[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.kind = kind
        self._allocate(f"obsbundle-exp-{kind}-")
        self.config_file = self.workdir / "obsbundle.yaml"
        self.config_file.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
        self.extra_args = list(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.start()

    def start(self) -> None:
        self.proc = self._popen(
            [which("obsbundle"), "exporter", self.kind, "--config", str(self.config_file),
             "--web.listen-address", self.address, *self.extra_args],
            env=self.env,
        )
        self._wait_http("/-/healthy", "exporter")

    def scrape_text(self, timeout: float = 30.0) -> str:
        response = httpx.get(f"http://{self.address}/metrics", timeout=timeout)
        response.raise_for_status()
        return response.text

    def scrape(self, timeout: float = 30.0) -> Samples:
        return parse_metrics(self.scrape_text(timeout))
