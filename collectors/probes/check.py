"""HTTP(S) uptime probes: one check of a configured endpoint, with phases, status and TLS expiry.

A check never raises: every outcome becomes a `ProbeResult` whose `reason` is one of a small
fixed set (`obsbundle.catalog.probes.REASONS`), so a dashboard can count failures by cause and
the label can never carry a hostname, an address or an error message.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from collectors.metricset import MetricSet
from collectors.runtime import error_code
from obsbundle.catalog import probes as names
from obsbundle.secrets import redact_url, register_url_secrets
from obsbundle.settings import ProbeSource
from obsbundle.tenancy import SHARED, TenantResolver, normalize

# httpcore trace event stem -> phase name (DNS resolution happens inside connect_tcp).
_PHASE_EVENTS = {
    "connect_tcp": "connect",
    "start_tls": "tls",
    "send_request_headers": "request",
    "send_request_body": "request",
    "receive_response_headers": "processing",
    "receive_response_body": "transfer",
}


@dataclass(frozen=True)
class ProbeSpec:
    """One `sources.probes` entry, with the tenant resolved."""

    name: str
    url: str
    tenant_id: str
    method: str
    interval: float
    timeout: float
    expect_status: tuple[int, ...]
    follow_redirects: bool
    tls_ca_file: str | None

    @classmethod
    def from_source(cls, source: ProbeSource, resolver: TenantResolver | None = None) -> ProbeSpec:
        register_url_secrets(source.url)
        tenant_id = SHARED
        if source.tenant:
            tenant_id = normalize(source.tenant)
            tenant_id = resolver.admit(tenant_id) if resolver else tenant_id
        return cls(
            name=source.name,
            url=source.url,
            tenant_id=tenant_id,
            method=source.method,
            interval=source.interval,
            timeout=source.timeout,
            expect_status=source.expect_status,
            follow_redirects=source.follow_redirects,
            tls_ca_file=source.tls_ca_file,
        )


@dataclass
class ProbeResult:
    success: bool
    reason: str
    duration: float
    status: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    cert_expiry_days: float | None = None


def failure_reason(exc: BaseException) -> str:
    """The probe's reason label for a failed check: the error code if it is a probe reason."""
    code = error_code(exc)
    return code if code in names.REASONS else "other"


def _cert_expiry_days(stream: Any) -> float | None:
    try:
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        cert = ssl_object.getpeercert() if ssl_object is not None else None  # a dict only when verified
    except (OSError, ValueError):
        return None
    if not cert or "notAfter" not in cert:
        return None
    return (ssl.cert_time_to_seconds(cert["notAfter"]) - time.time()) / 86400.0


class _Timings:
    """httpx `trace` extension callback: per-phase wall time and the TLS stream."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.phases: dict[str, float] = {}
        self.cert_expiry_days: float | None = None

    def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        stem, _, step = event.partition(".")[2].rpartition(".")
        phase = _PHASE_EVENTS.get(stem)
        if phase is None:
            return
        now = time.perf_counter()
        if step == "started":
            self.started[stem] = now
        elif step in ("complete", "failed") and stem in self.started:
            self.phases[phase] = self.phases.get(phase, 0.0) + now - self.started.pop(stem)
            if stem == "start_tls" and step == "complete":
                # read now: the socket is closed (and the cert gone) once the response is
                self.cert_expiry_days = _cert_expiry_days(info.get("return_value"))


class Prober:
    """Checks one endpoint; keeps a client (TLS context loaded once) but never reuses connections,
    so every check measures a fresh connect and handshake like a real first visit."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        verify: ssl.SSLContext | bool = True
        if spec.tls_ca_file:
            try:
                verify = ssl.create_default_context(cafile=spec.tls_ca_file)
            except (OSError, ssl.SSLError):
                from obsbundle.errors import ConfigError

                raise ConfigError(f"sources.probes {spec.name}: tls_ca_file is not a readable PEM file") from None
        self._client = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(spec.timeout),
            follow_redirects=spec.follow_redirects,
            limits=httpx.Limits(max_keepalive_connections=0),
            trust_env=False,
        )

    def check(self) -> ProbeResult:
        spec = self.spec
        timings = _Timings()
        started = time.perf_counter()
        deadline = started + spec.timeout
        status = 0
        try:
            request = self._client.build_request(spec.method, spec.url, extensions={"trace": timings})
            response = self._client.send(request, stream=True)
            try:
                status = response.status_code
                for _chunk in response.iter_raw():
                    if time.perf_counter() > deadline:
                        raise httpx.ReadTimeout("probe deadline passed while reading the body")
            finally:
                response.close()
        except Exception as exc:
            reason = failure_reason(exc)
            return ProbeResult(False, reason, time.perf_counter() - started, status, timings.phases,
                               timings.cert_expiry_days)
        duration = time.perf_counter() - started
        expiry = timings.cert_expiry_days
        if duration > spec.timeout:
            return ProbeResult(False, "timeout", duration, status, timings.phases, expiry)
        ok = status in spec.expect_status
        return ProbeResult(ok, "ok" if ok else "http_status", duration, status, timings.phases, expiry)

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"Prober({self.spec.name}, {redact_url(self.spec.url)})"


def emit(spec: ProbeSpec, result: ProbeResult, out: MetricSet) -> None:
    """Write one probe's last result as catalogued samples."""
    labels = {"probe": spec.name, "tenant_id": spec.tenant_id}
    out.set(names.SUCCESS.name, 1.0 if result.success else 0.0, labels)
    out.set(names.DURATION.name, result.duration, labels)
    out.declare_empty([names.PHASE_DURATION.name])
    for phase in names.PHASES:
        if phase in result.phases:
            out.set(names.PHASE_DURATION.name, result.phases[phase], {**labels, "phase": phase})
    out.set(names.STATUS_CODE.name, result.status, labels)
    if result.cert_expiry_days is not None:
        out.set(names.CERT_EXPIRY.name, result.cert_expiry_days, labels)
    reason = result.reason if result.reason in names.REASONS else "other"
    out.set(names.FAILURE.name, 1.0, {**labels, "reason": reason})
