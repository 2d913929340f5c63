"""Route templates and path parameters from the app's own router (Starlette/FastAPI, Flask).

The middleware asks the router before the app runs, so a tenant path parameter is known while the
handler runs (baggage, spans); the hand-kept `routes` table is only the fallback for raw ASGI/WSGI
apps. Templates come from code, never from the request, so the `route` label stays bounded; both
`{id:int}` (Starlette) and `<int:id>` (Flask) become `{id}`, so labels match across frameworks.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

Match = tuple[str, dict[str, str]]
Matcher = Callable[[Any], Match | None]

_STARLETTE_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):[^{}]*\}")
_FLASK_PARAM = re.compile(r"<(?:[^<>]*:)?([A-Za-z_][A-Za-z0-9_]*)>")


@functools.lru_cache(maxsize=4096)  # paths come from the router's code, so this is bounded in practice
def template(path: str) -> str:
    """`/a/{id:int}` and `/a/<int:id>` -> `/a/{id}`."""
    return _FLASK_PARAM.sub(r"{\1}", _STARLETTE_PARAM.sub(r"{\1}", path))


def _params(raw: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (raw or {}).items()}


def starlette_matcher(app: Any) -> Matcher | None:
    """For an app with Starlette routes (FastAPI, Starlette): scope -> (template, params) or None."""
    routes = getattr(app, "routes", None)
    if not isinstance(routes, list) or not all(callable(getattr(r, "matches", None)) for r in routes):
        return None

    def match(scope: MutableMapping[str, Any]) -> Match | None:
        partial: Match | None = None
        for route in routes:
            try:
                found, child = route.matches(scope)
            except Exception:  # a router that cannot judge this scope: fall back, never fail the request
                return None
            kind = getattr(found, "name", "")
            if kind not in ("FULL", "PARTIAL"):
                continue
            path = getattr(route, "path", None)
            if not isinstance(path, str):  # a Host: only the app's router knows (`scope_route` after it ran)
                if kind == "FULL":
                    return None
                continue
            # a Mount gives its prefix: FastAPI's router sets no scope["route"] for what is mounted
            result = (template(path), _params(child.get("path_params")))
            if kind == "FULL":
                return result
            partial = partial or result  # path matches, method does not: the app answers 405 on it
        return partial

    return match


def scope_route(scope: Mapping[str, Any]) -> str | None:
    """The template Starlette's router left in the scope (`scope["route"]`), once the app ran."""
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return template(path) if isinstance(path, str) else None


def flask_matcher(app: Any) -> Matcher | None:
    """For a Flask app (anything with a werkzeug `url_map`): environ -> (template, params) or None.

    Flask's request object is in `environ["werkzeug.request"]` during dispatch only (it is cleared
    when the request context pops, before the server closes the body), so the URL map is asked
    directly instead.
    """
    owner = getattr(app, "__self__", app)  # `flask_app.wsgi_app` wrapped instead of the app
    bind = getattr(getattr(owner, "url_map", None), "bind_to_environ", None)
    if not callable(bind):
        return None

    def match(environ: dict[str, Any]) -> Match | None:
        try:
            rule, args = bind(environ).match(return_rule=True)
        except Exception:  # NotFound, MethodNotAllowed, RequestRedirect: not a route template
            return None
        text = getattr(rule, "rule", None)
        return (template(text), _params(args)) if isinstance(text, str) else None

    return match
