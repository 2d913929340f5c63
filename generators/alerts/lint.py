"""Lint for the generated alerting files: catalog-only metrics, complete annotations, tests that
cover every rule both ways, no inline secrets, and (when installed) promtool and amtool."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import promql_parser as pp
import yaml

from generators.alerts.alertmanager import CONFIG_FILE
from generators.alerts.model import SEVERITIES, AlertRule, unsupported_templates
from generators.promql_ast import walk
from obsbundle.catalog import Catalog, catalog_for

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
GAUGE_FUNCTIONS = frozenset({"deriv", "delta", "idelta", "predict_linear"})
SCRAPE_LABELS = frozenset({"instance", "job"})
INLINE_SECRETS = re.compile(r"^[\s-]*(api_url|routing_key|service_key|auth_password|bearer_token):", re.M)
TOOL_TIMEOUT = 120




def _selector(node: object) -> pp.VectorSelector | None:
    if isinstance(node, pp.MatrixSelector):
        return node.vector_selector
    return node if isinstance(node, pp.VectorSelector) else None


def _labels_under(node: object, catalog: Catalog, recorded: set[str]) -> set[str] | None:
    """Labels the series under `node` can carry; None when a recording rule (unknown labels) is there."""
    labels = set(SCRAPE_LABELS)
    for child in walk(node):
        if isinstance(child, pp.VectorSelector):
            metric = catalog.series(child.name) if child.name not in recorded else None
            if metric is None:
                return None
            labels |= set(metric.labels) | ({"le"} if child.name.endswith("_bucket") else set())
    return labels


def expression_problems(expr: str, catalog: Catalog, recorded: set[str]) -> list[str]:
    """Unknown metrics, matchers on labels the metric lacks, rate() of gauges, deriv() of counters."""
    try:
        tree = pp.parse(expr)
    except (ValueError, RuntimeError) as exc:
        return [f"does not parse ({str(exc).splitlines()[0]})"]
    problems = []
    for node in walk(tree):
        if isinstance(node, pp.AggregateExpr) and node.modifier is not None \
                and node.modifier.type == pp.AggModifierType.By:
            available = _labels_under(node.expr, catalog, recorded)
            missing = [label for label in node.modifier.labels if available is not None and label not in available]
            if missing:
                problems.append(f"aggregates by {', '.join(missing)}, which no metric under it has")
        if isinstance(node, pp.VectorSelector):
            if node.name in recorded:
                continue
            metric = catalog.series(node.name)
            if metric is None:
                problems.append(f"{node.name} is neither a catalog metric nor a recording rule")
                continue
            allowed = {*metric.labels, *SCRAPE_LABELS, "__name__"}
            if node.name.endswith("_bucket"):
                allowed.add("le")
            for matcher in node.matchers.matchers:
                if matcher.name not in allowed:
                    problems.append(f"{node.name} has no label {matcher.name}")
        elif isinstance(node, pp.Call) and node.func.name in COUNTER_FUNCTIONS | GAUGE_FUNCTIONS:
            sel = next((s for a in node.args if (s := _selector(a)) is not None), None)
            metric = catalog.series(sel.name) if sel is not None and sel.name else None
            if metric is None:
                continue
            counterish = metric.type == "counter" or metric.type == "histogram"
            if node.func.name in COUNTER_FUNCTIONS and not counterish:
                problems.append(f"{node.func.name}() of {metric.type} {sel.name}")
            if node.func.name in GAUGE_FUNCTIONS and counterish:
                problems.append(f"{node.func.name}() of {metric.type} {sel.name}")
    return problems


def _yaml(files: Mapping[str, str], path: str) -> Any:
    try:
        return yaml.safe_load(files[path])
    except yaml.YAMLError as exc:
        return {"__error__": str(exc).splitlines()[0]}


def _runbook_anchors() -> set[str]:
    from generators.alerts.model import anchor

    if not RUNBOOKS.exists():
        return set()
    return {anchor(m) for m in re.findall(r"^#{2,3} (.+?)\s*$", RUNBOOKS.read_text(encoding="utf-8"), re.M)}


def rule_problems(config: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    catalog = catalog_for(config)
    rule_paths = sorted(p for p in files if p.startswith("alerts/rules/"))
    docs = {p: _yaml(files, p) for p in rule_paths}
    recorded = {r["record"] for d in docs.values() for g in d.get("groups", []) for r in g["rules"] if "record" in r}
    anchors = _runbook_anchors()
    base = config["alerting"]["runbook_base_url"]
    uids = {json_uid for p, text in files.items() if p.startswith("dashboards/") and p.endswith(".json")
            for json_uid in re.findall(r'^  "uid": "([^"]+)"', text, re.M)}
    problems = []
    for path, doc in docs.items():
        if "__error__" in doc:
            problems.append(f"{path}: not YAML: {doc['__error__']}")
            continue
        for group in doc.get("groups", []):
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                where = f"{path}: {name}"
                problems += [f"{where}: {p}" for p in expression_problems(rule["expr"], catalog, recorded)]
                if "alert" not in rule:
                    continue
                labels, notes = rule.get("labels", {}), rule.get("annotations", {})
                if labels.get("severity") not in SEVERITIES:
                    problems.append(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
                for key in ("summary", "description", "runbook_url", "dashboard_url"):
                    if not notes.get(key):
                        problems.append(f"{where}: annotation {key} missing")
                for key, text in notes.items():
                    for bad in unsupported_templates(text):
                        problems.append(f"{where}: annotation {key} uses {bad} (tests can't predict it)")
                runbook = notes.get("runbook_url", "")
                if not runbook.startswith(base + "#") or (anchors and runbook.split("#", 1)[1] not in anchors):
                    problems.append(f"{where}: runbook_url {runbook} has no section in docs/runbooks.md")
                uid = notes.get("dashboard_url", "").split("?")[0].rstrip("/").rsplit("/", 1)[-1]
                if uids and uid not in uids:
                    problems.append(f"{where}: dashboard_url names uid {uid}, which no generated dashboard has")
                if rule.get("for", "0s") in ("0s", "0m", "0"):
                    problems.append(f"{where}: `for` is zero; a single bad scrape would page")
    return problems


def coverage_problems(rules: list[AlertRule], files: Mapping[str, str]) -> list[str]:
    """Each (alertname, severity) must fire in some generated test and be absent in another."""
    fired: set[tuple[str, str]] = set()
    silent: set[tuple[str, str]] = set()
    for path in (p for p in files if p.startswith("alerts/tests/")):
        for test in _yaml(files, path).get("tests", []):
            for case in test.get("alert_rule_test", []):
                present = {a["exp_labels"].get("severity") for a in case.get("exp_alerts", [])}
                for severity in SEVERITIES:
                    (fired if severity in present else silent).add((case["alertname"], severity))
    problems = []
    for rule in rules:
        key = (rule.name, rule.severity)
        if key not in fired:
            problems.append(f"alerts/tests: no test where {rule.name} ({rule.severity}) fires")
        if key not in silent:
            problems.append(f"alerts/tests: no test where {rule.name} ({rule.severity}) stays silent")
    return problems


def config_problems(config: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    problems = []
    slo = config["slo"]
    for kind in ("availability", "latency"):
        budget = 1 - float(slo[kind]["objective"])
        for tier in slo["burn_rates"]:
            if float(tier["factor"]) * budget >= 1:
                problems.append(f"slo.burn_rates: factor {tier['factor']} x {kind} budget {budget:g} >= 1: "
                                "that alert can never fire")
    buckets = [float(b) for b in config["app"]["latency_buckets_seconds"]]
    if float(slo["latency"]["threshold_seconds"]) not in buckets:
        problems.append("slo.latency.threshold_seconds must be one of app.latency_buckets_seconds")
    text = files.get(CONFIG_FILE, "")
    if INLINE_SECRETS.search(text):
        problems.append(f"{CONFIG_FILE}: inline secret; use api_url_file / routing_key_file")
    return problems


def tool_problems(files: Mapping[str, str]) -> list[str]:
    """promtool check rules, promtool test rules and amtool check-config, when installed."""
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    if not (promtool or amtool):
        return []
    problems = []
    with tempfile.TemporaryDirectory(prefix="obsbundle-alerts-lint-") as tmp:
        root = Path(tmp)
        for path, text in files.items():
            if path.startswith("alerts/"):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_text(text, encoding="utf-8")
        rules = sorted(str(p.relative_to(root)) for p in (root / "alerts/rules").glob("*.yaml"))
        tests = sorted(str(p.relative_to(root)) for p in (root / "alerts/tests").glob("*.yaml"))
        commands = []
        if promtool and rules:
            commands.append([promtool, "check", "rules", *rules])
        if promtool:  # one process per test file: they run in parallel
            commands += [[promtool, "test", "rules", test] for test in tests]
        if amtool and (root / CONFIG_FILE).exists():
            commands.append([amtool, "check-config", CONFIG_FILE])
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            for problem in pool.map(lambda cmd: _run_tool(cmd, root), commands):
                if problem:
                    problems.append(problem)
    return problems


def _run_tool(cmd: list[str], cwd: Path) -> str | None:
    what = f"{Path(cmd[0]).name} {' '.join(cmd[1:3])}"
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"{what}: timed out after {TOOL_TIMEOUT}s"
    if done.returncode == 0:
        return None
    output = (done.stdout + done.stderr).strip().splitlines()
    detail = "; ".join(line.strip() for line in output if line.strip())[:4000]
    return f"{what} failed: {detail}"
