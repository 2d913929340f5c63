"""A loopback HTTP(S) server for probes to hit, and the self-signed certificate it serves."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that stays silent when a client hangs up on a slow reply."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class TargetServer:
    """A loopback HTTP (or HTTPS with `cert`) server: /ok -> 200, /error -> 500, /slow?s=2 -> late 200."""

    def __init__(self, cert: tuple[Path, Path] | None = None) -> None:
        self.httpd = QuietHTTPServer(("127.0.0.1", 0), _Handler)  # probes hang up on slow replies
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


class ExpositionServer:
    """A loopback scrape target whose /metrics body comes from `render()` at each request: synthetic
    exporters for tests and benchmarks (many tenants' series without many real services)."""

    def __init__(self, render: Callable[[], bytes]) -> None:
        self.render = render

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = render()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
