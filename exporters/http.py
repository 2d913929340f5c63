"""The exporter HTTP endpoint: /metrics (or --web.telemetry-path), /-/healthy, /-/ready and /.

Served by Hypercorn (asyncio, HTTP/1.1 via h11) rather than a thread-per-connection server: a
connection costs a coroutine, not a thread, so idle or slowloris clients cannot exhaust threads.
Hypercorn brings the listen backlog, TLS and two timeouts: `idle_timeout` closes a connection that
has not completed its request headers (or sits idle between keep-alive requests), `read_timeout`
bounds each read. Blocking work (a scrape, a bcrypt check) runs in one bounded thread pool.
Concurrent /metrics requests await one shared scrape (single-flight on the event loop), so 200
concurrent scrapes cost one collection and one pool thread.

`/-/ready` answers 503 until the first collection has completed (started in the background at
start-up, so readiness never waits for Prometheus), then 200 — also while a target is down: the
exporter is ready to serve `*_up 0`, which is what Prometheus must see to alert; the body names
the failing collectors so an operator can see why.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import gzip
import logging
import socket
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.metrics_core import Metric as Family

from collectors.metricset import MetricSet
from collectors.runtime import Exposition
from exporters.runtime import ScrapeRunner
from exporters.webconfig import WebConfig
from obsbundle.errors import ObsbundleError

log = logging.getLogger("obsbundle.http")

ALLOWED_METHODS = ("GET", "HEAD")
BACKLOG = 1024
WORKERS = 8
IDLE_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

_Send = ASGISendCallable
_Headers = list[tuple[bytes, bytes]]


class _RunnerCollector:
    """prometheus_client adapter: each collect() is one single-flight scrape of the runner."""

    def __init__(self, runner: ScrapeRunner) -> None:
        self._runner = runner

    def describe(self) -> list[Family]:
        """Every catalogued family, empty: registers the names (so `?name[]=` filtering finds
        them) without running a scrape at registration time."""
        empty = MetricSet(self._runner.catalog)
        empty.declare_empty(self._runner.catalog)
        return empty.families()

    def collect(self) -> Iterable[Family]:
        return self._runner.scrape()


def parse_listen_address(address: str) -> tuple[str, int]:
    """host:port, [v6]:port or :port (all interfaces) -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ObsbundleError(f"--web.listen-address {address!r}: expected host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class ExporterApp:
    """The ASGI application: routing, method and auth checks, async single-flight /metrics."""

    def __init__(
        self, runner: ScrapeRunner, telemetry_path: str, pool: ThreadPoolExecutor, web: WebConfig | None = None
    ) -> None:
        self.runner = runner
        self.telemetry_path = telemetry_path
        self.web = web or WebConfig()
        self._pool = pool
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_RunnerCollector(runner))
        self._inflight: asyncio.Future[Exposition] | None = None
        self.ready = False
        self._landing = (
            f"<html><head><title>obsbundle {runner.exporter} exporter</title></head><body>"
            f"<h1>obsbundle {runner.exporter} exporter</h1>"
            f'<p><a href="{telemetry_path}">Metrics</a></p></body></html>'
        ).encode()

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: _Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            await self._http(scope, send)
        except Exception as exc:  # one line, no traceback, no secret
            log.warning("request %s failed: %s", scope.get("path"), type(exc).__name__)
            await _respond(send, 500, b"internal error\n")

    async def _lifespan(self, receive: ASGIReceiveCallable, send: _Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                asyncio.get_running_loop().create_task(self._first_collection())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _first_collection(self) -> None:
        try:
            await self._scrape_text()
        except Exception as exc:
            log.warning("first collection failed: %s", type(exc).__name__)

    async def _http(self, scope: HTTPScope, send: _Send) -> None:
        method = scope["method"]
        headers = self.web.response_headers()
        if method not in ALLOWED_METHODS:
            await _respond(send, 405, b"method not allowed\n", [*headers, (b"allow", b"GET, HEAD")], method)
            return
        request_headers = dict(scope.get("headers") or [])
        if self.web.basic_auth_users:
            authorization = request_headers.get(b"authorization", b"")
            loop = asyncio.get_running_loop()
            if not await loop.run_in_executor(self._pool, self.web.authorized, authorization):
                challenge = (b"www-authenticate", b'Basic realm="obsbundle", charset="UTF-8"')
                await _respond(send, 401, b"unauthorized\n", [*headers, challenge], method)
                return
        path = scope["path"]
        if path == self.telemetry_path:
            await self._metrics(scope, request_headers, headers, send, method)
        elif path == "/-/healthy":
            await _respond(send, 200, b"OK\n", headers, method)
        elif path == "/-/ready":
            status, body = self.readiness()
            await _respond(send, status, body, headers, method)
        elif path == "/":
            await _respond(send, 200, self._landing, [*headers, (b"content-type", b"text/html; charset=utf-8")],
                           method)
        else:
            await _respond(send, 404, b"not found\n", headers, method)

    def readiness(self) -> tuple[int, bytes]:
        if not self.ready:
            return 503, b"not ready: first collection has not completed\n"
        down = self.runner.failing_collectors()
        if not down:
            return 200, b"OK\n"
        return 200, ("OK; failing collectors: " + ", ".join(down) + "\n").encode()

    async def _scrape_text(self) -> Exposition:
        """One scrape shared by every request that arrives while it runs."""
        flight = self._inflight
        if flight is None:
            flight = asyncio.get_running_loop().run_in_executor(self._pool, self.runner.scrape_exposition)
            self._inflight = flight

            def done(_: asyncio.Future[Exposition]) -> None:
                self._inflight = None
                self.ready = True

            flight.add_done_callback(done)
        return await asyncio.shield(flight)

    async def _metrics(
        self, scope: HTTPScope, request_headers: dict[bytes, bytes], headers: _Headers, send: _Send, method: str
    ) -> None:
        loop = asyncio.get_running_loop()
        query = scope.get("query_string", b"").decode("latin-1")
        names = parse_qs(query).get("name[]")
        if names:  # name[] filters: prometheus_client's encoders over a restricted registry
            accept = request_headers.get(b"accept", b"").decode("latin-1")
            encoder, content_type = choose_encoder(accept)
            body = await loop.run_in_executor(
                self._pool, lambda: encoder(self._registry.restricted_registry(names))
            )
            exposition = None
        else:
            exposition, content_type = await self._scrape_text(), CONTENT_TYPE_PLAIN_0_0_4
        extra = [(b"content-type", content_type.encode())]
        if b"gzip" in request_headers.get(b"accept-encoding", b""):
            # once per scrape result however many requests share it, and only its per-scrape part:
            # the background passes' deflate stream is cached with their text (runtime/exposition.py)
            compress = exposition.gzipped if exposition is not None else functools.partial(gzip.compress, body, 1)
            body = await loop.run_in_executor(self._pool, compress)
            extra.append((b"content-encoding", b"gzip"))
        elif exposition is not None:
            body = exposition.body
        await _respond(send, 200, body, [*headers, *extra], method)


async def _respond(
    send: _Send, status: int, body: bytes, headers: _Headers | None = None, method: str = "GET"
) -> None:
    headers = list(headers or [])
    if not any(name == b"content-type" for name, _ in headers):
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body, "more_body": False})


class _Config(HypercornConfig):
    """Hypercorn settings with our own pre-bound socket and SSLContext."""

    def __init__(self, sock: socket.socket, web: WebConfig, idle_timeout: float) -> None:
        super().__init__()
        self._sock = sock
        self._web = web
        self.backlog = BACKLOG
        self.keep_alive_timeout = idle_timeout
        self.read_timeout = int(READ_TIMEOUT)
        self.ssl_handshake_timeout = idle_timeout
        self.h11_max_incomplete_size = 16 * 1024
        self.accesslog = None
        self.errorlog = logging.getLogger("obsbundle.http.server")
        self.alpn_protocols = ["http/1.1"]

    @property
    def ssl_enabled(self) -> bool:
        return self._web.tls

    def create_ssl_context(self) -> Any:
        return self._web.ssl_context() if self._web.tls else None

    def create_sockets(self) -> Sockets:
        secure, insecure = ([self._sock], []) if self._web.tls else ([], [self._sock])
        return Sockets(secure, insecure, [])


class ExporterServer:
    """The exporter's HTTP(S) server bound to the listen address, serving until `shutdown()`."""

    def __init__(
        self,
        runner: ScrapeRunner,
        listen_address: str,
        telemetry_path: str = "/metrics",
        web_config: WebConfig | None = None,
        workers: int = WORKERS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        if not telemetry_path.startswith("/"):
            raise ObsbundleError(f"--web.telemetry-path {telemetry_path!r}: must start with /")
        host, port = parse_listen_address(listen_address)
        self.web = web_config or WebConfig()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(BACKLOG)
        except OSError as exc:
            sock.close()
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ObsbundleError(f"--web.listen-address {listen_address}: {reason}") from None
        sock.setblocking(False)
        self.socket = sock
        self.port = sock.getsockname()[1]
        self.runner = runner
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http")
        self.app = ExporterApp(runner, telemetry_path, self.pool, self.web)
        self._config = _Config(sock, self.web, idle_timeout)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._serving = False

    def serve_forever(self) -> None:
        self._serving = True
        self.runner.start()
        log.info("listening on port %d%s", self.port, " (TLS)" if self.web.tls else "")
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        await serve(self.app, self._config, shutdown_trigger=self._stop.wait, mode="asgi")

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, daemon=True, name="http")
        thread.start()
        self._started.wait(10)
        return thread

    def shutdown(self) -> None:
        if self._serving:
            self._started.wait(10)
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        else:
            self.socket.close()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.runner.close()
