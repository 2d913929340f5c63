"""Typed round trip of a dashboard through grafana-foundation-sdk, the check every clone can run.

The JSON Schema test needs Grafana's schema file from ../shared, which a user's clone never has.
The SDK's typed `Dashboard.from_json` ships with the package: a key Grafana's model does not know
(a typo, a legacy field, a panel option of another panel type) is dropped on the way in, and a value
of the wrong shape fails or comes back different. So `to_json(from_json(d))` must give back every
key and value of `d`; the SDK may only add its own defaults.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any


@cache
def _sdk() -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the v1 model is the one schemaVersion 42 JSON uses
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
        from grafana_foundation_sdk.cog.plugins import register_default_plugins
        from grafana_foundation_sdk.models.dashboard import Dashboard
    register_default_plugins()  # typed options/fieldConfig per panel type, typed Prometheus queries
    return Dashboard, JSONEncoder


def _differences(original: Any, back: Any, path: str) -> Iterator[str]:
    if isinstance(original, dict) and isinstance(back, dict):
        for key in original:
            if key not in back:
                yield f"{path}/{key} is not in Grafana's typed dashboard model"
            else:
                yield from _differences(original[key], back[key], f"{path}/{key}")
    elif isinstance(original, list) and isinstance(back, list) and len(original) == len(back):
        for i, (a, b) in enumerate(zip(original, back, strict=True)):
            yield from _differences(a, b, f"{path}/{i}")
    elif isinstance(original, list) and isinstance(back, list):
        yield f"{path} has {len(original)} items, the typed model reads {len(back)}"
    elif original != back or type(original) is not type(back):
        yield f"{path or '/'} is {json.dumps(original)[:80]}, the typed model reads it as {json.dumps(back)[:80]}"


def roundtrip_errors(dashboard: Mapping[str, Any]) -> list[str]:
    """Problems of one dashboard model against grafana-foundation-sdk's typed Dashboard."""
    dashboard_cls, encoder = _sdk()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            back = json.loads(json.dumps(dashboard_cls.from_json(dict(dashboard)), cls=encoder))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return [f"grafana-foundation-sdk cannot read the dashboard: {type(exc).__name__}: {exc}"]
    return [f"round trip: {p}" for p in _differences(dict(dashboard), back, "")]
