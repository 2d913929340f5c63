"""A loopback OTLP receiver (HTTP/protobuf, and gRPC when grpcio is installed) for tests and the demo.

It decodes the real protobuf requests (`opentelemetry-proto`) and keeps flattened spans, metric
points and log records in memory. `delay` makes it slow and `status` makes it refuse, so tests
can prove that a bad receiver never slows or fails the instrumented service.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from obsbundle.services import wait_for

_REQUESTS = {
    "traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


@dataclass
class Received:
    """Everything decoded so far, flattened to plain dicts (hex ids, attribute dicts)."""

    spans: list[dict[str, Any]] = field(default_factory=list)
    points: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_REQUESTS, 0))

    def add(self, signal: str, request: Any) -> None:
        self.requests[signal] += 1
        if signal == "traces":
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        self.spans.append({
                            "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(), "name": span.name,
                            "attributes": attributes(span.attributes), "resource": resource,
                        })
        elif signal == "metrics":
            for rm in request.resource_metrics:
                resource = attributes(rm.resource.attributes)
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        kind = metric.WhichOneof("data")
                        for point in getattr(metric, kind).data_points:
                            value = None
                            if kind in ("sum", "gauge"):
                                value = point.as_double if point.HasField("as_double") else point.as_int
                            self.points.append({
                                "name": metric.name, "kind": kind, "attributes": attributes(point.attributes),
                                "resource": resource, "value": value,
                                "count": getattr(point, "count", None) if kind == "histogram" else None,
                            })
        else:
            for rl in request.resource_logs:
                resource = attributes(rl.resource.attributes)
                for sl in rl.scope_logs:
                    for record in sl.log_records:
                        self.logs.append({
                            "trace_id": record.trace_id.hex(), "span_id": record.span_id.hex(),
                            "body": any_value(record.body), "severity": record.severity_text,
                            "attributes": attributes(record.attributes), "resource": resource,
                        })


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    receiver: OTLPReceiver

    def do_POST(self) -> None:
        signal = self.path.rstrip("/").rsplit("/", 1)[-1]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        receiver = self.receiver
        if receiver.delay:
            time.sleep(receiver.delay)
        if signal not in _REQUESTS or self.path != f"/v1/{signal}":
            self._reply(404, b"")
            return
        if receiver.status != 200:
            self._reply(receiver.status, b"")
            return
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        request_type, response_type = _REQUESTS[signal]
        request = request_type()
        request.ParseFromString(body)
        receiver.record(signal, request)
        self._reply(200, response_type().SerializeToString())

    def _reply(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


class OTLPReceiver:
    """OTLP/HTTP on `http_endpoint` (and OTLP/gRPC on `grpc_endpoint` with `grpc=True`)."""

    def __init__(self, grpc: bool = False) -> None:
        self.delay = 0.0
        self.status = 200
        self.received = Received()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"receiver": self})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # exporters hang up on a slow reply
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        self._grpc: Any = None
        self.grpc_port: int | None = None
        if grpc:
            self._start_grpc()

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def record(self, signal: str, request: Any) -> None:
        with self._lock:
            self.received.add(signal, request)

    def _start_grpc(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        receiver = self

        def export(signal: str) -> Callable[[Any, Any, Any], Any]:
            def handle(_self: Any, request: Any, context: Any) -> Any:
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.status != 200:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "receiver refusing")
                receiver.record(signal, request)
                return _REQUESTS[signal][1]()

            return handle

        server = grpc.server(ThreadPoolExecutor(max_workers=4))
        for module, servicer, adder, signal in (
            (trace_service_pb2_grpc, "TraceServiceServicer", "add_TraceServiceServicer_to_server", "traces"),
            (metrics_service_pb2_grpc, "MetricsServiceServicer", "add_MetricsServiceServicer_to_server", "metrics"),
            (logs_service_pb2_grpc, "LogsServiceServicer", "add_LogsServiceServicer_to_server", "logs"),
        ):
            cls = type(servicer, (getattr(module, servicer),), {"Export": export(signal)})
            getattr(module, adder)(cls(), server)
        self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc = server

    # -- reading what arrived ----------------------------------------------------------------

    def spans(self, **attrs: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [s for s in self.received.spans if _matches(s["attributes"], attrs)]

    def points(self, name: str, **attrs: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.received.points if p["name"] == name and _matches(p["attributes"], attrs)]

    def logs(self, **attrs: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.received.logs if _matches(r["attributes"], attrs)]

    def wait(self, what: Callable[[], Any], timeout: float = 30.0, name: str = "OTLP data") -> Any:
        return wait_for(what, timeout, 0.1, what=name)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace=0)

    def __enter__(self) -> OTLPReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _matches(found: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(found.get(k) == v for k, v in wanted.items())

