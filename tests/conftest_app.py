"""Helpers for the app/probes tests: the example service on a real socket, loopback HTTP(S) targets."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from obsbundle.local_services import PrometheusServer, free_port, wait_for

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



class ExemplarPrometheus(PrometheusServer):
    """The shared Prometheus launcher with `--enable-feature=exemplar-storage` (OpenMetrics exemplars kept)."""

    def _popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return super()._popen([*cmd, "--enable-feature=exemplar-storage"], **kwargs)

    def exemplars(self, selector: str, start: float, end: float) -> list[dict[str, Any]]:
        """`/api/v1/query_exemplars`: [{seriesLabels, exemplars: [{labels, value, timestamp}]}]."""
        body = httpx.get(f"{self.url}/api/v1/query_exemplars",
                         params={"query": selector, "start": str(start), "end": str(end)}, timeout=10).json()
        if body.get("status") != "success":
            raise AssertionError(f"query_exemplars {selector!r} failed: {body.get('error')}")
        return body["data"]


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects among a service's output lines (uvicorn's own lines are skipped)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found
