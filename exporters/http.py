"""The exporter HTTP endpoint: /metrics (or --web.telemetry-path), /-/healthy, /-/ready and /."""

from __future__ import annotations

import errno
import gzip
import logging
import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer, _SilentHandler

from collectors.metricset import MetricSet
from exporters.runtime import ScrapeRunner
from obsbundle.errors import ObsbundleError

log = logging.getLogger("obsbundle.http")


class _RunnerCollector:
    """prometheus_client adapter: each collect() is one single-flight scrape of the runner."""

    def __init__(self, runner: ScrapeRunner) -> None:
        self._runner = runner

    def describe(self) -> list:
        """Every catalogued family, empty: registers the names (so `?name[]=` filtering finds
        them) without running a scrape at registration time."""
        empty = MetricSet(self._runner.catalog)
        empty.declare_empty(self._runner.catalog)
        return empty.families()

    def collect(self) -> Iterable:
        return self._runner.scrape()


def parse_listen_address(address: str) -> tuple[str, int]:
    """host:port, [v6]:port or :port (all interfaces) -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ObsbundleError(f"--web.listen-address {address!r}: expected host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def build_app(runner: ScrapeRunner, telemetry_path: str = "/metrics") -> Callable:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RunnerCollector(runner))
    metrics_app = make_wsgi_app(registry)
    landing = (
        f"<html><head><title>obsbundle {runner.exporter} exporter</title></head><body>"
        f"<h1>obsbundle {runner.exporter} exporter</h1>"
        f'<p><a href="{telemetry_path}">Metrics</a></p></body></html>'
    ).encode()

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == telemetry_path:
            if environ.get("QUERY_STRING"):  # name[] filters etc.: prometheus_client's full handler
                return metrics_app(environ, start_response)
            return _fast_metrics(runner, environ, start_response)
        if path in ("/-/healthy", "/-/ready"):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"OK\n"]
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [landing]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


def _fast_metrics(runner: ScrapeRunner, environ: dict, start_response: Callable) -> Iterable[bytes]:
    """/metrics in text format 0.0.4 from ScrapeRunner.scrape_text(), gzipped when accepted."""
    body = runner.scrape_text()
    headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
    if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
        body = gzip.compress(body, compresslevel=1)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    start_response("200 OK", headers)
    return [body] if environ.get("REQUEST_METHOD") != "HEAD" else []


class ExporterServer:
    """A threading WSGI server bound to the listen address, serving until `shutdown()`."""

    def __init__(self, runner: ScrapeRunner, listen_address: str, telemetry_path: str = "/metrics") -> None:
        if not telemetry_path.startswith("/"):
            raise ObsbundleError(f"--web.telemetry-path {telemetry_path!r}: must start with /")
        host, port = parse_listen_address(listen_address)
        server_class: type[WSGIServer] = ThreadingWSGIServer
        if ":" in host:
            import socket

            class _V6(ThreadingWSGIServer):
                address_family = socket.AF_INET6

            server_class = _V6
        try:
            self.httpd = make_server(
                host, port, build_app(runner, telemetry_path), server_class, handler_class=_SilentHandler
            )
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ObsbundleError(f"--web.listen-address {listen_address}: {reason}") from None
        self.runner = runner
        self.port = self.httpd.server_port

    def serve_forever(self) -> None:
        self.runner.start()
        log.info("listening on port %d", self.port)
        self.httpd.serve_forever()

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="http")
        thread.start()
        return thread

    def shutdown(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.runner.close()
