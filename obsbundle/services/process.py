"""Process control shared by every launcher: free loopback ports, polling, binary lookup, and the
`Service` base that owns one subprocess tree in its own temp dir."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

SERVICE_USER = "postgres"  # initdb refuses root; Debian's postgresql package creates this user
VENV_BIN = Path(sys.executable).parent

S = TypeVar("S", bound="Service")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll until predicate() is truthy; return its value or raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}: {last_exc!r}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def which(name: str, *extra_dirs: str) -> str:
    """The venv's copy first (console scripts), then `extra_dirs` (Debian's sbin), then PATH."""
    for directory in (str(VENV_BIN), *extra_dirs):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make test`, which installs the system packages")
    return found


def as_service_user(cmd: list[str]) -> list[str]:
    """`cmd` run as SERVICE_USER when we are root (initdb and pgbouncer refuse to run as root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVICE_USER, "--", *cmd]
    return cmd


def owned_tempdir(prefix: str) -> Path:
    """A temp dir the service user can write to, for processes started with as_service_user()."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVICE_USER)
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


class Loopback:
    """Something listening on 127.0.0.1:`port`."""

    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


class Service(Loopback):
    """Base: a subprocess on a loopback port with a log file, stoppable, pausable (SIGSTOP) and restartable."""

    proc: subprocess.Popen[bytes] | None = None
    workdir: Path

    def _allocate(self, prefix: str, owned: bool = False) -> None:
        """A free port and a fresh temp dir (writable by the service user if `owned`)."""
        self.port = free_port()
        self.workdir = owned_tempdir(prefix) if owned else Path(tempfile.mkdtemp(prefix=prefix))

    def _wait_listening(self, what: str, timeout: float = 30) -> None:
        def listening() -> bool:
            self._exited(what)
            return port_open(self.port)

        wait_for(listening, timeout, what=f"{what} on {self.port}")

    def _wait_http(self, path: str, what: str, timeout: float = 30) -> None:
        """Until GET `path` answers 200 (Prometheus-style /-/ready, /-/healthy)."""
        def ready() -> bool:
            self._exited(what)
            return httpx.get(f"{self.url}{path}", timeout=1).status_code == 200

        wait_for(ready, timeout, what=f"{what} {path}")

    def log_text(self) -> str:
        log = self.workdir / "service.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def _popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = open(self.workdir / "service.log", "ab")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)

    def _exited(self, what: str) -> None:
        """Raise with the log's tail if the process died (so a wait_for fails at once, not by timeout)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{what} exited {self.proc.returncode}: {self.log_text()[-2000:]}")

    def process_tree(self) -> list[int]:
        """The service's process and all its descendants (PostgreSQL backends call setsid(), so a
        process-group signal would reach only the postmaster)."""
        assert self.proc is not None
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def _signal_tree(self, signum: int) -> None:
        for pid in self.process_tree():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def pause(self) -> None:
        """SIGSTOP the whole process tree: the port still accepts connections but nothing answers."""
        self._signal_tree(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_tree(signal.SIGCONT)

    def _stop_with(self, signum: int, timeout: float) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signum)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None

    def stop(self) -> None:
        self._stop_with(signal.SIGTERM, 15)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def running(service: S) -> Iterator[S]:
    try:
        yield service
    finally:
        service.close()
