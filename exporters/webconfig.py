"""`--web.config.file`: TLS and basic auth in the Prometheus exporter-toolkit format.

The same file passes `promtool check web-config`. What Python's ssl module cannot honour the way
the Go toolkit does (inline PEM, cipher and curve lists, SAN allow-lists, client certificates that
are requested but not verified, rate limits, HTTP/2) is rejected at start-up with a one-line error
naming the key, never silently ignored. Error messages name keys, never values: a value may be a
bcrypt hash or a private key.
"""

from __future__ import annotations

import base64
import hashlib
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt

from obsbundle.config import safe_load_unique
from obsbundle.errors import ConfigError

_TOP = {"tls_server_config", "http_server_config", "basic_auth_users"}
_TOP_GO_ONLY = {"rate_limit"}
_TLS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"}
_TLS_GO_ONLY = {"cert", "key", "client_ca", "client_allowed_sans", "cipher_suites",
                "prefer_server_cipher_suites", "curve_preferences"}
_HTTP = {"headers"}
_HTTP_GO_ONLY = {"http2"}
_HEADERS = {"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "X-XSS-Protection",
            "Strict-Transport-Security"}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_CLIENT_AUTH_GO_ONLY = {"RequestClientCert", "RequireAnyClientCert"}
_VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
             "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_BCRYPT = re.compile(r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}")
_CACHE_LIMIT = 1024


@dataclass
class WebConfig:
    """A validated web config; the default (no file) is plain HTTP without authentication."""

    source: str = "<none>"
    cert_file: str | None = None
    key_file: str | None = None
    client_ca_file: str | None = None
    client_auth: ssl.VerifyMode = ssl.CERT_NONE
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    headers: dict[str, str] = field(default_factory=dict)
    basic_auth_users: dict[str, bytes] = field(default_factory=dict)
    _verified: dict[bytes, bool] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    def ssl_context(self) -> ssl.SSLContext:
        """A server context; a bad cert/key/CA file is a one-line ConfigError naming the key."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        context.maximum_version = self.max_version
        context.options |= ssl.OP_NO_COMPRESSION
        try:
            context.load_cert_chain(self.cert_file or "", self.key_file)
        except (OSError, ssl.SSLError):
            raise ConfigError(f"{self.source}: tls_server_config.cert_file/key_file: cannot load the "
                              "certificate and key (missing file, bad PEM or a key that does not match)") from None
        if self.client_ca_file:
            try:
                context.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError):
                raise ConfigError(f"{self.source}: tls_server_config.client_ca_file: cannot load") from None
        context.verify_mode = self.client_auth
        return context

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        return [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]

    def authorized(self, authorization: bytes) -> bool:
        """Check an `Authorization: Basic` header. bcrypt is slow by design, so a verified
        (user, password, hash) triple is cached under a digest, never in clear, as the Go toolkit does."""
        if not self.basic_auth_users:
            return True
        scheme, _, encoded = authorization.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user_b, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
            user = user_b.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.basic_auth_users.get(user)
        if not sep or hashed is None:
            bcrypt.checkpw(b"timing", _DUMMY_HASH)  # same cost for unknown users
            return False
        key = hashlib.sha256(user_b + b"\0" + password + b"\0" + hashed).digest()
        with self._lock:
            cached = self._verified.get(key)
        if cached is not None:
            return cached
        ok = bcrypt.checkpw(password, hashed)
        if ok:
            with self._lock:
                if len(self._verified) >= _CACHE_LIMIT:
                    self._verified.clear()
                self._verified[key] = True
        return ok


_DUMMY_HASH = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=10))


def load_web_config(path: str | None) -> WebConfig:
    """Parse and validate `--web.config.file`; None (no flag) is plain HTTP."""
    if not path:
        return WebConfig()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--web.config.file {file}: cannot read: {type(exc).__name__}") from None
    raw = safe_load_unique(text, str(file)) or {}
    return parse_web_config(raw, str(file), file.parent)


def parse_web_config(raw: Any, source: str, base: Path = Path()) -> WebConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    _check_keys(raw, "", _TOP, _TOP_GO_ONLY, source)
    web = WebConfig(source=source)
    tls = _section(raw, "tls_server_config", source)
    if tls:
        _check_keys(tls, "tls_server_config.", _TLS, _TLS_GO_ONLY, source)
        for key in ("cert_file", "key_file"):
            if not isinstance(tls.get(key), str) or not tls[key]:
                raise ConfigError(f"{source}: tls_server_config.{key}: required (a file name)")
        web.cert_file = str(base / tls["cert_file"])
        web.key_file = str(base / tls["key_file"])
        if tls.get("client_ca_file"):
            web.client_ca_file = str(base / _string(tls, "client_ca_file", "tls_server_config.", source))
        auth = tls.get("client_auth_type", "NoClientCert")
        if auth in _CLIENT_AUTH_GO_ONLY:
            raise ConfigError(f"{source}: tls_server_config.client_auth_type: {auth} (a certificate requested "
                              "but not verified) is only supported by the Go exporter-toolkit; "
                              "use RequireAndVerifyClientCert")
        if auth not in _CLIENT_AUTH:
            raise ConfigError(f"{source}: tls_server_config.client_auth_type: must be one of "
                              + ", ".join(sorted(_CLIENT_AUTH)))
        web.client_auth = _CLIENT_AUTH[auth]
        if web.client_auth != ssl.CERT_NONE and not web.client_ca_file:
            raise ConfigError(f"{source}: tls_server_config.client_ca_file: required by client_auth_type {auth}")
        for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
            version = tls.get(key, default)
            if version not in _VERSIONS:
                raise ConfigError(f"{source}: tls_server_config.{key}: must be one of " + ", ".join(_VERSIONS))
            setattr(web, key, _VERSIONS[version])
        if web.min_version > web.max_version:
            raise ConfigError(f"{source}: tls_server_config.min_version: must not exceed max_version")
    http = _section(raw, "http_server_config", source)
    if http:
        _check_keys(http, "http_server_config.", _HTTP, _HTTP_GO_ONLY, source)
        headers = _section(http, "headers", source, "http_server_config.")
        for name, value in headers.items():
            if name not in _HEADERS:
                raise ConfigError(f"{source}: http_server_config.headers.{name}: unknown header (allowed: "
                                  + ", ".join(sorted(_HEADERS)) + ")")
            if value:
                web.headers[name] = _string(headers, name, "http_server_config.headers.", source)
    users = _section(raw, "basic_auth_users", source)
    for user, hashed in users.items():
        if not isinstance(user, str) or not isinstance(hashed, str) or not _BCRYPT.fullmatch(hashed):
            raise ConfigError(f"{source}: basic_auth_users: the entry for user {str(user)!r} is not a bcrypt hash")
        web.basic_auth_users[user] = hashed.encode()
    return web


def _check_keys(section: dict, prefix: str, known: set[str], go_only: set[str], source: str) -> None:
    for key in section:
        if key in go_only:
            raise ConfigError(f"{source}: {prefix}{key}: only supported by the Go exporter-toolkit, not by obsbundle")
        if key not in known:
            raise ConfigError(f"{source}: {prefix}{key}: unknown key")


def _section(raw: dict, key: str, source: str, prefix: str = "") -> dict:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {prefix}{key}: must be a mapping")
    return value


def _string(section: dict, key: str, prefix: str, source: str) -> str:
    value = section.get(key)
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {prefix}{key}: must be a string")
    return value
