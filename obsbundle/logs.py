"""One line per log event, as logfmt (the Prometheus exporters' default) or JSON (for Loki/Alloy).

Both formats escape every control character, so a hostile message (newlines, quotes, NULs) can't
start a second line or forge a field, and cap the message length so one huge value can't stall
a shipper. Secrets are scrubbed by `obsbundle.secrets.ScrubFilter` before a formatter sees the
record. Extra fields are the record's non-standard attributes (`logger.info(..., extra={"k": v})`,
or set by a filter), the same ones OpenTelemetry's LoggingHandler turns into log attributes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

FORMATS = ("logfmt", "json")
MAX_MESSAGE_CHARS = 8192
_RESERVED = ("ts", "level", "logger", "msg")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        message = f"{message}: {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
    if len(message) > MAX_MESSAGE_CHARS:
        message = f"{message[:MAX_MESSAGE_CHARS]}...[{len(message) - MAX_MESSAGE_CHARS} chars truncated]"
    return message


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """ts, level, logger, msg, then the record's extra attributes (never overriding the first four)."""
    out: dict[str, Any] = {
        "ts": _timestamp(record),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": _message(record),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and key not in _RESERVED and not key.startswith("_") and value is not None:
            out[key] = value
    return out


class JSONFormatter(logging.Formatter):
    """One JSON object per line; non-ASCII and control characters are \\u-escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_fields(record), default=str, ensure_ascii=True, separators=(",", ":"))


def _logfmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str) if not isinstance(
        value, int | float) else repr(value)
    if text and not any(ch in text for ch in ' ="\\') and text.isprintable():
        return text
    return json.dumps(text, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _logfmt_key(key: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "_.-" else "_" for ch in key)
    return cleaned or "_"


class LogfmtFormatter(logging.Formatter):
    """`ts=... level=info logger=... msg="..." key=value` with logfmt quoting."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{_logfmt_key(k)}={_logfmt_value(v)}" for k, v in record_fields(record).items())


def formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return JSONFormatter() if fmt == "json" else LogfmtFormatter()


def setup_logging(level: str = "info", fmt: str = "logfmt", quiet: Iterable[str] = (
        "httpx", "httpcore", "temporalio", "asyncio")) -> None:
    """Route the root logger to stderr in `fmt`, secrets scrubbed; chatty libraries at warning+."""
    from obsbundle.secrets import ScrubFilter

    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ScrubFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
