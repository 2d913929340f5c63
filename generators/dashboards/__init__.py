"""Grafana dashboards as code: `render(config)` and `lint(config, files)` for `obsbundle generate/check`.

Dashboards are built with grafanalib (`builder`), normalised to Grafana's current model
(`normalize`), written as deterministic JSON (sorted keys, uids derived from names), and linted
against the metric catalog (`checks`). Besides `dashboards/<slug>.json` this renders a Grafana
provisioning file and one kube-prometheus-stack sidecar ConfigMap per dashboard (`provisioning`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.alerts.recording import recording_groups
from generators.cost.rules import recorded_labels as cost_recorded_labels
from generators.dashboards import provisioning
from generators.dashboards.boards import MODULES
from generators.dashboards.builder import Board, build
from generators.dashboards.checks import lint_files
from generators.dashboards.normalize import dumps
from generators.promql_lint import metric_names
from obsbundle.catalog import Catalog, Metric, catalog_for
from obsbundle.cost.model import cost_model

OUTPUT_DIR = "dashboards"


def boards(config: Mapping[str, Any]) -> list[Board]:
    return [module.board(config) for module in MODULES]


def dashboards(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """slug -> normalised dashboard model."""
    all_boards = boards(config)
    titles = {b.slug: b.title for b in all_boards}
    return {b.slug: build(config, b, titles) for b in all_boards}


def render(config: Mapping[str, Any]) -> dict[str, str]:
    """Every file under dashboards/: JSON models, the provider file and the sidecar ConfigMaps."""
    files: dict[str, str] = {}
    for slug, model in dashboards(config).items():
        text = dumps(model)
        files[f"{OUTPUT_DIR}/{slug}.json"] = text
        files[f"{OUTPUT_DIR}/kubernetes/{slug}.configmap.yaml"] = provisioning.configmap(config, slug, text)
    files[f"{OUTPUT_DIR}/provisioning/obsbundle.yaml"] = provisioning.provider(config)
    return dict(sorted(files.items()))


def dashboard_catalog(config: Mapping[str, Any]) -> Catalog:
    """The catalog plus the recording rules panels may read (the SLO window's series): a recorded
    name is a gauge of the source it is computed from, labelled by its level (`tenant_probe:` ->
    tenant_id, probe)."""
    base = catalog_for(config)
    recorded = []
    for group in recording_groups(config):
        for rule in group["rules"]:
            level = rule["record"].split(":", 1)[0]
            labels = tuple("tenant_id" if part == "tenant" else part for part in level.split("_"))
            sources = sorted({base.series(m).source for m in metric_names(rule["expr"], {})  # type: ignore[union-attr]
                              if base.series(m) is not None})
            recorded.append(Metric(name=rule["record"], type="gauge", help=f"Recording rule: {rule['expr']}",
                                   labels=labels, source=sources[0] if sources else "prometheus"))
    model = cost_model(config)
    recorded += [Metric(name=name, type="gauge", help="Recording rule of the cost model (docs/cost.md).",
                        labels=labels, source="cost")
                 for name, labels in cost_recorded_labels(model).items()]
    return base.extended(recorded)


def lint(config: Mapping[str, Any], files: Mapping[str, str]) -> list[str]:
    """Lint problems of the rendered dashboards (see `generators.dashboards.checks`)."""
    problems = lint_files(files, dashboard_catalog(config), prefix=f"{OUTPUT_DIR}/")
    problems += provisioning.check_configmaps(files, prefix=f"{OUTPUT_DIR}/")
    return problems
