"""Throwaway redis-server."""

from __future__ import annotations

from collections.abc import Iterable

from obsbundle.services.process import Service, which


class RedisServer(Service):
    """No persistence, loopback only, DEBUG allowed from loopback (tests use DEBUG SLEEP/POPULATE)."""

    def __init__(self, extra_args: Iterable[str] = ()) -> None:
        self._allocate("obsbundle-redis-")
        self.args = [
            which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            "--enable-debug-command", "local", *extra_args,
        ]
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = self._popen(self.args)
        self._wait_listening("redis", 15)
