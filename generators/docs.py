"""Generated reference docs: the metric catalog (docs/metrics.md) and the generated blocks of the
hand-written pages (README.md, CONTRIBUTING.md, docs/*.md).

Those pages are prose except between `<!-- BEGIN generated:NAME -->` and
`<!-- END generated:NAME -->` markers, which `obsbundle generate` fills from the catalog and the
alert rules, and `obsbundle check` verifies, so no table can drift from the code. A new page gets
a table by adding the two marker lines; no code changes.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from obsbundle.catalog import static_catalog
from obsbundle.catalog.markdown import SOURCE_TITLES, catalog_document, metrics_table

README = "README.md"
PAGES = (README, "CONTRIBUTING.md", "docs/*.md")  # where generated blocks may appear
METRICS_DOC = "docs/metrics.md"
_BLOCK = re.compile(
    r"(<!-- BEGIN generated:(?P<name>[a-z:_-]+) -->\n)(?P<body>.*?)(<!-- END generated:(?P=name) -->)", re.S
)


def render(config: Mapping[str, Any]) -> dict[str, str]:
    # The static catalog only: custom queries are the user's own and belong to their deployment.
    return {METRICS_DOC: catalog_document(static_catalog())}


def lint(config: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    """Every catalog reference to a threshold must name an entry of the config's `thresholds`."""
    thresholds = config.get("thresholds") or {}
    catalog = static_catalog()
    return [
        f"obsbundle/catalog: {name}: threshold {catalog[name].threshold!r} is not in the config's thresholds"
        for name in catalog
        if catalog[name].threshold and catalog[name].threshold not in thresholds
    ]


def _alerts_block(config: Mapping[str, Any], page: str) -> str:
    from generators.alerts.docs import alerts_table

    runbooks = posixpath.relpath("docs/runbooks.md", posixpath.dirname(page) or ".")
    return alerts_table(config).replace("](runbooks.md#", f"]({runbooks}#")


def _block_renderers(config: Mapping[str, Any], page: str) -> dict[str, Callable[[], str]]:
    blocks: dict[str, Callable[[], str]] = {
        f"metrics:{source}": functools.partial(metrics_table, source) for source in SOURCE_TITLES
    }
    blocks["alerts"] = lambda: _alerts_block(config, page)
    return blocks


def page_text(config: Mapping[str, Any], page: str, current: str) -> tuple[str, list[str]]:
    """A page with every generated block refreshed, and the names of unknown blocks."""
    renderers = _block_renderers(config, page)
    unknown: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in renderers:
            unknown.append(name)
            return match.group(0)
        return f"{match.group(1)}{renderers[name]()}{match.group(4)}"

    return _BLOCK.sub(fill, current), unknown


def readme_text(config: Mapping[str, Any], current: str) -> tuple[str, list[str]]:
    return page_text(config, README, current)


def _pages(root: Path) -> Iterator[tuple[str, Path]]:
    for pattern in PAGES:
        for path in sorted(root.glob(pattern)):
            rel = path.relative_to(root).as_posix()
            if rel != METRICS_DOC:
                yield rel, path


def sync_pages(config: Mapping[str, Any], root: Path) -> list[str]:
    """Rewrite the generated blocks of every page in place; the pages that changed."""
    changed = []
    for rel, path in _pages(root):
        current = path.read_text(encoding="utf-8")
        updated, _ = page_text(config, rel, current)
        if updated != current:
            path.write_text(updated, encoding="utf-8")
            changed.append(rel)
    return changed


def sync_readme(config: Mapping[str, Any], root: Path) -> bool:
    """Rewrite every page's generated blocks (README.md and docs/*.md); True when one changed."""
    return bool(sync_pages(config, root))


def pages_drift(config: Mapping[str, Any], root: Path) -> list[str]:
    problems = []
    for rel, path in _pages(root):
        current = path.read_text(encoding="utf-8")
        updated, unknown = page_text(config, rel, current)
        problems += [f"{rel}: unknown generated block {name!r}" for name in unknown]
        if updated != current:
            problems.append(f"{rel}: generated tables are stale (metric catalog or alert rules changed); "
                            "run `obsbundle generate`")
    return problems


def readme_drift(config: Mapping[str, Any], root: Path) -> list[str]:
    return pages_drift(config, root)
