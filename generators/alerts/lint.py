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

import yaml

from generators.alerts.alertmanager import CONFIG_FILE
from generators.alerts.model import SEVERITIES, AlertRule, unsupported_templates
from generators.promql_lint import expression_problems
from obsbundle.catalog import catalog_for

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"
INLINE_SECRETS = re.compile(r"^[\s-]*(api_url|routing_key|service_key|auth_password|bearer_token):", re.M)
TOOL_TIMEOUT = 120




def _yaml(files: Mapping[str, str], path: str) -> Any:
    try:
        return yaml.safe_load(files[path])
    except yaml.YAMLError as exc:
        return {"__error__": str(exc).splitlines()[0]}


def _runbook_anchors() -> set[str] | None:
    """Section anchors of docs/runbooks.md; None when the file is missing (a problem, not a pass)."""
    from generators.alerts.model import anchor

    if not RUNBOOKS.exists():
        return None
    return {anchor(m) for m in re.findall(r"^#{2,3} (.+?)\s*$", RUNBOOKS.read_text(encoding="utf-8"), re.M)}


def rule_problems(config: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    catalog = catalog_for(config)
    rule_paths = sorted(p for p in files if p.startswith("alerts/rules/"))
    docs = {p: _yaml(files, p) for p in rule_paths}
    recorded = {r["record"] for d in docs.values() for g in d.get("groups", []) for r in g["rules"] if "record" in r}
    anchors = _runbook_anchors()
    base = config["alerting"]["runbook_base_url"]
    problems: list[str] = []
    if anchors is None:
        problems.append(f"{RUNBOOKS}: missing; every alert's runbook_url needs its section there")
        anchors = set()
    uids = {json_uid for p, text in files.items() if p.startswith("dashboards/") and p.endswith(".json")
            for json_uid in re.findall(r'^  "uid": "([^"]+)"', text, re.M)}
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
                    if " query `" in text:  # the generated tests take its expected text from the fixture
                        continue
                    for bad in unsupported_templates(text):
                        problems.append(f"{where}: annotation {key} uses {bad} (tests can't predict it)")
                runbook = notes.get("runbook_url", "")
                if not runbook.startswith(base + "#") or runbook.split("#", 1)[1] not in anchors:
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
        if rule.always and key in fired:
            continue
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
    """promtool check rules, promtool test rules and amtool check-config; a missing tool is a problem."""
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    problems = [f"{tool}: not installed (Debian {package}); the generated rules and routing are unchecked"
                for tool, found, package in (("promtool", promtool, "prometheus"),
                                             ("amtool", amtool, "prometheus-alertmanager")) if not found]
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


# The packaged example values: links built from them lead nowhere.
EXAMPLE_URLS = {"alerting.runbook_base_url": "https://github.com/example/", "dashboards.grafana_url": "http://grafana.local"}


def placeholder_warnings(config: Mapping[str, Any]) -> list[str]:
    """Settings still at the packaged example (warned by `obsbundle check`, not failed)."""
    values = {"alerting.runbook_base_url": config["alerting"]["runbook_base_url"],
              "dashboards.grafana_url": config["dashboards"]["grafana_url"]}
    return [f"{key} is still the example value {values[key]}: alert links will not open"
            for key, prefix in EXAMPLE_URLS.items() if values[key].startswith(prefix)]
