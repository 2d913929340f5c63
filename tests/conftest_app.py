"""Helpers for the app/probes tests: the example service on a real socket, loopback HTTP(S) targets."""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from obsbundle.local_services import VENV_BIN, free_port, port_open, wait_for

ROOT = Path(__file__).resolve().parents[1]


class UvicornThread:
    """An ASGI app served by uvicorn from a daemon thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, 30, what="uvicorn started")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class UvicornProcess:
    """`uvicorn <target>` as a subprocess (its own GIL, so client load can't skew its latencies)."""

    def __init__(self, target: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="obsbundle-uvicorn-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "uvicorn"), target, "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--no-access-log"],
            cwd=str(ROOT), env={**os.environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, 60, 0.1, what=f"uvicorn {target} listening")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited {self.proc.returncode}: {Path(self.log.name).read_text()[-2000:]}")
        return port_open(self.port)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()
        os.unlink(self.log.name)


def raw_request(port: int, head: bytes) -> bytes:
    """Send raw request bytes (headers httpx refuses to build) and return the raw response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.partition("=")[2] or 2))
        status = 500 if self.path.startswith("/error") else 200
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class TargetServer:
    """A loopback HTTP (or HTTPS with `cert`) server: /ok -> 200, /error -> 500, /slow?s=2 -> late 200."""

    def __init__(self, cert: tuple[Path, Path] | None = None) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # probes hang up on slow replies
        self.scheme = "http"
        if cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert[0]), str(cert[1]))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def self_signed_cert(directory: Path, days: int) -> tuple[Path, Path]:
    """A self-signed certificate for IP 127.0.0.1 expiring `days` from now (openssl CLI)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", str(days), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def sample_sum(samples: dict, name: str, **match: str) -> float:
    """Sum of a parsed sample family's values whose labels include `match`."""
    series = samples.get(name, {}).items()
    return sum(v for labels, v in series if all(dict(labels).get(k) == x for k, x in match.items()))

