"""The metric tables in README.md / CONTRIBUTING.md / docs/*.md are generated, and drift is reported."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from generators import docs
from obsbundle import config
from obsbundle.catalog import static_catalog
from obsbundle.catalog.markdown import metrics_table

ROOT = Path(__file__).resolve().parent.parent
AREA_PAGES = {"docs/postgres.md": "postgres", "docs/redis.md": "redis", "docs/temporal.md": "temporal",
              "docs/app.md": "app"}


@pytest.fixture(scope="module")
def cfg() -> dict[str, Any]:
    return config.load(ROOT / "obsbundle.yaml")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for page in ("README.md", "CONTRIBUTING.md"):
        shutil.copy(ROOT / page, tmp_path / page)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path


def test_committed_pages_are_current(cfg: dict[str, Any]) -> None:
    assert docs.pages_drift(cfg, ROOT) == []


def test_each_area_page_carries_its_catalog_table() -> None:
    for page, source in AREA_PAGES.items():
        text = (ROOT / page).read_text(encoding="utf-8")
        name = f"metrics:{source}"
        block = f"<!-- BEGIN generated:{name} -->\n{metrics_table(source)}<!-- END generated:{name} -->"
        assert block in text, page


def test_a_hand_edited_table_is_reported_and_regenerated(cfg: dict[str, Any], tree: Path) -> None:
    page = tree / "docs" / "redis.md"
    original = page.read_text(encoding="utf-8")
    page.write_text(original.replace("| `redis_up` | gauge |", "| `redis_up` | counter |"), encoding="utf-8")
    assert docs.pages_drift(cfg, tree) == [
        "docs/redis.md: generated tables are stale (metric catalog or alert rules changed); run `obsbundle generate`"
    ]
    assert docs.sync_pages(cfg, tree) == ["docs/redis.md"]
    assert page.read_text(encoding="utf-8") == original
    assert docs.pages_drift(cfg, tree) == []


def test_a_new_page_gets_a_table_from_two_marker_lines(cfg: dict[str, Any], tree: Path) -> None:
    page = tree / "docs" / "extra.md"
    page.write_text("# Extra\n\n<!-- BEGIN generated:metrics:probes -->\n<!-- END generated:metrics:probes -->\n")
    assert docs.pages_drift(cfg, tree) == [
        "docs/extra.md: generated tables are stale (metric catalog or alert rules changed); run `obsbundle generate`"
    ]
    docs.sync_pages(cfg, tree)
    assert metrics_table("probes") in page.read_text(encoding="utf-8")


def test_an_unknown_block_is_reported(cfg: dict[str, Any], tree: Path) -> None:
    marker = "generated:metrics:nosuch -->"
    (tree / "docs" / "extra.md").write_text(f"<!-- BEGIN {marker}\nx\n<!-- END {marker}\n")
    assert docs.pages_drift(cfg, tree) == ["docs/extra.md: unknown generated block 'metrics:nosuch'"]


def test_a_threshold_reference_must_exist_in_the_config(cfg: dict[str, Any]) -> None:
    referenced = {m.threshold for m in static_catalog().values() if m.threshold}
    assert referenced and docs.lint(cfg, {}) == []
    missing = sorted(referenced)[0]
    trimmed = {**cfg, "thresholds": {k: v for k, v in cfg["thresholds"].items() if k != missing}}
    problems = docs.lint(trimmed, {})
    assert problems and all(f"threshold {missing!r} is not in the config's thresholds" in p for p in problems)


def test_the_configuration_example_is_a_valid_config() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    parsed = config.parse(example, "docs/configuration.md")
    assert parsed["tenancy"]["max_tenants"] == 5000
    assert parsed["thresholds"]["error_ratio"] == {"warning": 0.05, "critical": 0.10, "for": "5m"}
