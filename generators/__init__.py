"""Generators: dashboards and alerts from code and config, deterministic to the byte.

Each generator module exposes `render(config) -> dict[relative_path, text]` and
`lint(config, files) -> list[str]`. `write_all` writes what they render; `check_all` renders in
memory and reports drift against the files on disk plus every lint problem.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GENERATORS = ("generators.dashboards", "generators.alerts", "generators.cost", "generators.deploy",
              "generators.docs", "generators.datasources")
OWNED_DIRS = ("dashboards", "alerts", "deploy")


def _modules() -> list[Any]:
    modules = []
    for name in GENERATORS:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return modules


def render_all(config: Mapping[str, Any]) -> dict[str, str]:
    files: dict[str, str] = {}
    for module in _modules():
        for path, text in module.render(config).items():
            if path in files:
                raise ValueError(f"{path} rendered by two generators")
            files[path] = text
    return dict(sorted(files.items()))


def lint_all(config: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    return [problem for module in _modules() for problem in module.lint(config, files)]


def write_all(config: Mapping[str, Any], root: Path) -> list[str]:
    files = render_all(config)
    for directory in OWNED_DIRS:
        for stale in sorted((root / directory).rglob("*")) if (root / directory).exists() else []:
            if stale.is_file() and str(stale.relative_to(root)) not in files:
                stale.unlink()
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    from generators.docs import sync_readme

    if sync_readme(config, root):
        files["README.md"] = ""
    return list(files)


def drift(files: Mapping[str, str], root: Path) -> list[str]:
    problems = []
    for path, text in files.items():
        target = root / path
        if not target.exists():
            problems.append(f"{path}: missing (not generated)")
        elif target.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from its generator (edited by hand or stale)")
    for directory in OWNED_DIRS:
        if (root / directory).exists():
            for extra in sorted((root / directory).rglob("*")):
                rel = str(extra.relative_to(root))
                if extra.is_file() and rel not in files:
                    problems.append(f"{rel}: not produced by any generator")
    return problems


def check_all(config: Mapping[str, Any], root: Path) -> list[str]:
    from generators.docs import readme_drift

    files = render_all(config)
    return drift(files, root) + readme_drift(config, root) + lint_all(config, files)
