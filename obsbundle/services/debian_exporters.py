"""Prometheus exporters Debian packages (node_exporter for the host panels, and the peer
postgres/redis exporters the benchmarks compare against), each on a free loopback port."""

from __future__ import annotations

import os
from collections.abc import Iterable

from obsbundle.services.process import Service, which


class DebianExporter(Service):
    """`/usr/bin/<binary> <listen_flag>=127.0.0.1:<port> <args>`, ready once its port accepts."""

    def __init__(self, binary: str, args: Iterable[str] = (), env: dict[str, str] | None = None,
                 listen_flag: str = "--web.listen-address") -> None:
        self.binary = binary
        self._allocate(f"obsbundle-{binary}-")
        self.cmd = [which(binary, "/usr/bin"), f"{listen_flag}={self.address}", *args]
        self.env = {**os.environ, **(env or {})}
        self.start()

    @property
    def metrics_url(self) -> str:
        return f"{self.url}/metrics"

    def start(self) -> None:
        self.proc = self._popen(self.cmd, env=self.env)
        self._wait_listening(self.binary, 60)


class NodeExporter(DebianExporter):
    def __init__(self) -> None:
        super().__init__("prometheus-node-exporter")
