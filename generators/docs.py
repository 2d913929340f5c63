"""Generated reference docs: the metric catalog (docs/metrics.md) and the README's generated blocks.

README.md is hand-written except between `<!-- BEGIN generated:NAME -->` and
`<!-- END generated:NAME -->` markers, which `obsbundle generate` fills from the catalog and the
alert rules, and `obsbundle check` verifies, so the README's tables can never drift from the code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from obsbundle.catalog import static_catalog
from obsbundle.catalog.markdown import catalog_document, metrics_table

README = "README.md"
_BLOCK = re.compile(
    r"(<!-- BEGIN generated:(?P<name>[a-z:_-]+) -->\n)(?P<body>.*?)(<!-- END generated:(?P=name) -->)", re.S
)


def render(config: Mapping[str, Any]) -> dict[str, str]:
    # The static catalog only: custom queries are the user's own and belong to their deployment.
    return {"docs/metrics.md": catalog_document(static_catalog())}


def lint(config: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    return []


def _alerts_block(config: Mapping[str, Any]) -> str:
    from generators.alerts.docs import alerts_table

    return alerts_table(config).replace("](runbooks.md#", "](docs/runbooks.md#")


def _block_renderers(config: Mapping[str, Any]) -> dict[str, Callable[[], str]]:
    blocks: dict[str, Callable[[], str]] = {
        f"metrics:{source}": (lambda s=source: metrics_table(s))
        for source in ("postgres", "redis", "temporal", "app", "probes", "exporter")
    }
    blocks["alerts"] = lambda: _alerts_block(config)
    return blocks


def readme_text(config: Mapping[str, Any], current: str) -> tuple[str, list[str]]:
    """The README with every generated block refreshed, and the names of unknown blocks."""
    renderers = _block_renderers(config)
    unknown: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in renderers:
            unknown.append(name)
            return match.group(0)
        return f"{match.group(1)}{renderers[name]()}{match.group(4)}"

    return _BLOCK.sub(fill, current), unknown


def sync_readme(config: Mapping[str, Any], root: Path) -> bool:
    """Rewrite README.md's generated blocks in place; True when it changed."""
    path = root / README
    if not path.exists():
        return False
    current = path.read_text(encoding="utf-8")
    updated, _ = readme_text(config, current)
    if updated != current:
        path.write_text(updated, encoding="utf-8")
    return updated != current


def readme_drift(config: Mapping[str, Any], root: Path) -> list[str]:
    path = root / README
    if not path.exists():
        return []
    current = path.read_text(encoding="utf-8")
    updated, unknown = readme_text(config, current)
    problems = [f"{README}: unknown generated block {name!r}" for name in unknown]
    if updated != current:
        problems.append(f"{README}: generated tables are stale (metric catalog or alert rules changed)")
    return problems
