"""Alert generator: Prometheus recording and alerting rules, their promtool tests, Alertmanager
routing with Slack/PagerDuty templates, a PrometheusRule manifest and docs/alerts.md.

`render(config)` and `lint(config, files)` follow the contract in `generators/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.alerts.alertmanager import CONFIG_FILE, TEMPLATE_FILE, render_config, render_templates
from generators.alerts.definitions import build_rules
from generators.alerts.docs import DOC_FILE, alerts_table, render_doc
from generators.alerts.lint import (
    config_problems,
    coverage_problems,
    placeholder_warnings,
    rule_problems,
    tool_problems,
)
from generators.alerts.rulefiles import render_operator_manifest, render_rule_files, render_test_files

OPERATOR_FILE = "alerts/kubernetes/prometheusrule.yaml"

__all__ = ["alerts_table", "build_rules", "lint", "placeholder_warnings", "render"]


def render(config: Mapping[str, Any]) -> dict[str, str]:
    """Every file this generator owns, relative to the project root."""
    rules = build_rules(config)
    files = {
        **render_rule_files(config, rules),
        **render_test_files(config, rules),
        CONFIG_FILE: render_config(config),
        TEMPLATE_FILE: render_templates(),
        OPERATOR_FILE: render_operator_manifest(config, rules),
        DOC_FILE: render_doc(config, rules),
    }
    return dict(sorted(files.items()))


def lint(config: Mapping[str, Any], files: Mapping[str, str], tools: bool = True) -> list[str]:
    """Problems with the rendered files; `tools=False` skips promtool/amtool (slow)."""
    rules = build_rules(config)
    problems = config_problems(config, files) + rule_problems(config, files) + coverage_problems(rules, files)
    if tools:
        problems += tool_problems(files)
    return problems
