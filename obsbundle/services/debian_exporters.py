"""Prometheus exporters Debian packages (node_exporter for the host panels, and the peer
postgres/redis exporters the benchmarks compare against), each on a free loopback port."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from obsbundle.services.process import Service, free_port, port_open, wait_for, which


class DebianExporter(Service):
    """`/usr/bin/<binary> <listen_flag>=127.0.0.1:<port> <args>`, ready once its port accepts."""

    def __init__(self, binary: str, args: Iterable[str] = (), env: dict[str, str] | None = None,
                 listen_flag: str = "--web.listen-address") -> None:
        self.binary = binary
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"obsbundle-{binary}-"))
        self.cmd = [which(binary, "/usr/bin"), f"{listen_flag}={self.address}", *args]
        self.env = {**os.environ, **(env or {})}
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}/metrics"

    def start(self) -> None:
        self.proc = self._popen(self.cmd, env=self.env)
        wait_for(self._ready, 60, what=f"{self.binary} on {self.port}")

    def _ready(self) -> bool:
        self._exited(self.binary)
        return port_open(self.port)


class NodeExporter(DebianExporter):
    def __init__(self) -> None:
        super().__init__("prometheus-node-exporter")
