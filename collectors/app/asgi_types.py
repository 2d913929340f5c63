"""The ASGI callable's types and the request headers, shared by the middleware layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_HEADERS = "obsbundle.headers"  # a private scope key: the layers decode the headers once


def request_headers(scope: Scope) -> dict[str, str]:
    """Lower-case name -> first value; never raises on odd bytes (latin-1 maps every byte)."""
    cached = scope.get(_HEADERS)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    found: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        try:
            found.setdefault(bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1"))
        except (TypeError, ValueError):
            continue
    scope[_HEADERS] = found
    return found
