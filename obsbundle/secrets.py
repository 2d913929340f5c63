"""Keep secrets (DSN passwords, webhook URLs, routing keys) out of output, logs and metrics.

Every secret the config yields is registered here; a logging filter scrubs registered values
from every record, and `redact_url` removes userinfo/passwords from connection strings.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_lock = threading.Lock()
_secrets: set[str] = set()

MASK = "***"
_SECRET_QUERY_KEYS = {"password", "passwd", "pass", "sslpassword", "token", "api_key", "apikey", "secret"}
_KV_PASSWORD = re.compile(r"(?i)\b(password|passwd|sslpassword)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]+)")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s:]*):(\S*)@")  # greedy: a password may hold / ? @


def _split_userinfo(url: str) -> tuple[str, str, str | None, str] | None:
    """(scheme://, user, password, rest) split at the LAST @, so a password holding `/`, `?` or
    `#` (which urlsplit would read as path or query) is still recognised as the password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo, _, hostinfo = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return f"{scheme}://", user, password if colon else None, hostinfo


def register_secret(value: str | None) -> None:
    """Remember a secret so the log filter can scrub it wherever it appears."""
    if value and len(value) >= 3:
        with _lock:
            _secrets.add(value)


def register_url_secrets(url: str | None) -> None:
    """Register the password (and secret query parameters) of a URL or libpq DSN."""
    if not url:
        return
    for match in _KV_PASSWORD.finditer(url):
        register_secret(match.group(2).strip("'"))
    split = _split_userinfo(url)
    if split and split[2]:
        register_secret(split[2])
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.password:
        register_secret(parts.password)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _SECRET_QUERY_KEYS:
            register_secret(value)


def redact_url(url: str) -> str:
    """The URL or DSN with passwords masked; safe to print or log."""
    text = _KV_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", url)
    split = _split_userinfo(text)
    if split and split[2] is not None:
        text = f"{split[0]}{split[1]}:{MASK}@{split[3]}"
    try:
        parts = urlsplit(text)
    except ValueError:
        return scrub(text)
    if not parts.scheme or not parts.netloc:
        return scrub(text)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*")
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def scrub(text: str) -> str:
    """Replace every registered secret and any URL userinfo password in free text."""
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)
    text = _KV_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class ScrubFilter(logging.Filter):
    """Rewrites each record's final message so no registered secret reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}: {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            record.exc_info = None
            record.exc_text = None
        record.msg = scrub(message)
        record.args = None
        return True


def setup_logging(level: str = "info", fmt: str = "logfmt") -> None:
    """One line per event on stderr (logfmt or JSON, see `obsbundle.logs`), secrets scrubbed."""
    from obsbundle.logs import setup_logging as _setup

    _setup(level, fmt)
