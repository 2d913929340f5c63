"""Collector failures and the one table that turns any exception into a short error code.

Codes label `obsbundle_collector_last_error_info`, `temporal_api_errors_total` and the probe
reason, so they come from a small fixed vocabulary and never from an exception's text, which may
carry a host, a user or a password. Messages are matched against known fragments, never echoed.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable, Iterator

__all__ = ["CollectorError", "error_code", "register_error_code"]


class CollectorError(Exception):
    """A failure with a short, secret-free code for `obsbundle_collector_last_error_info`."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


# Exception types anywhere in the cause chain (httpx and redis wrap the OS error).
_TYPE_CODES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    ((ssl.SSLError, ssl.CertificateError), "tls"),
    (ConnectionRefusedError, "connection_refused"),
    (socket.gaierror, "dns"),
    (TimeoutError, "timeout"),  # also socket.timeout and asyncio.TimeoutError
)
# SQLSTATE of database errors (psycopg sets `sqlstate`).
_SQLSTATE_CODES = {"28P01": "auth_failed", "28000": "auth_failed", "57014": "timeout"}
# Fragments of the outermost message: libpq reports every failed connection as one class, and
# httpx folds OS errors into its own; the cause only shows in the text.
_MESSAGE_CODES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), code) for pattern, code in (
        (r"password authentication failed|no password supplied|no pg_hba\.conf entry", "auth_failed"),
        (r'(role|database) "[^"]*" does not exist', "no_such_role_or_database"),
        (r"timeout expired", "timeout"),
        (r"connection refused|errno 111", "connection_refused"),
        (r"could not translate host name|failed to resolve host|name or service not known|nodename nor servname"
         r"|temporary failure in name resolution|no address associated|name resolution", "dns"),
        (r"too many (connections|clients)", "too_many_connections"),
        (r"the database system is starting up", "starting_up"),
        (r"the database system is shutting down", "shutting_down"),
        (r"certificate|\bssl\b|\btls\b", "tls"),
    )
)
# Fragments of class names, for drivers this module does not import.
_CLASS_CODES = (
    ("Timeout", "timeout"),
    ("QueryCanceled", "timeout"),
    ("Authentication", "auth_failed"),
    ("InvalidPassword", "auth_failed"),
    ("Permission", "permission_denied"),
    ("InsufficientPrivilege", "permission_denied"),
    ("Connection", "connection_failed"),
    ("Operational", "connection_failed"),
)
# Source-specific exception types whose code the exception itself carries (gRPC status, ...).
_REGISTERED: list[tuple[type[BaseException], Callable[[BaseException], str]]] = []


def register_error_code(exc_type: type[BaseException], code: Callable[[BaseException], str]) -> None:
    """Let a source map its driver's exception type (e.g. temporalio's RPCError) into the table."""
    if all(existing is not exc_type for existing, _ in _REGISTERED):
        _REGISTERED.append((exc_type, code))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def error_code(exc: BaseException, fallback: str = "error") -> str:
    """A short code for an exception; never its message, which may carry a host or user."""
    chain = list(_chain(exc))
    for current in chain:
        if isinstance(current, CollectorError):
            return current.code
        for exc_type, code_of in _REGISTERED:
            if isinstance(current, exc_type):
                return code_of(current)
        sqlstate = getattr(current, "sqlstate", None)
        if sqlstate in _SQLSTATE_CODES:
            return _SQLSTATE_CODES[sqlstate]
        for types, code in _TYPE_CODES:
            if isinstance(current, types):
                return code
    text = str(exc).lower()
    for pattern, code in _MESSAGE_CODES:
        if pattern.search(text):
            return code
    if any(isinstance(current, OSError) for current in chain):
        return "network"
    for current in chain:
        name = type(current).__name__
        for marker, code in _CLASS_CODES:
            if marker in name:
                return code
    return fallback
