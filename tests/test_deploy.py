"""The generated deploy files validate: core Kubernetes objects against the Kubernetes OpenAPI
schemas (kubernetes-validate, strict), the Prometheus Operator and KEDA objects against models
generated from their published CRD schemas (cloudcoil-models-prometheus-operator /
cloudcoil-models-keda, checked with pydantic and as a strict JSON Schema), and the systemd units
with `systemd-analyze verify`. Values come from config, the defaults being the seeds' numbers."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as monitoring
from cloudcoil.models.prometheus_operator import v1alpha1 as monitoring_alpha

import generators
from generators.deploy import kubernetes, prometheus, systemd
from obsbundle import config as obsconfig
from obsbundle.services import which

ROOT = Path(__file__).resolve().parents[1]
CRDS: dict[tuple[str, str], Any] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): monitoring.ServiceMonitor,
    ("monitoring.coreos.com/v1", "PodMonitor"): monitoring.PodMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): monitoring.PrometheusRule,
    ("monitoring.coreos.com/v1", "Alertmanager"): monitoring.Alertmanager,
    ("monitoring.coreos.com/v1", "Probe"): monitoring.Probe,
    ("monitoring.coreos.com/v1alpha1", "ScrapeConfig"): monitoring_alpha.ScrapeConfig,
    ("keda.sh/v1alpha1", "ScaledObject"): keda.ScaledObject,
}
CORE_KINDS = {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "Secret"}


def _strict(schema: Any) -> Any:
    """Unknown fields are errors (as kubeconform -strict / a structural CRD without preserve-unknown)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


_VALIDATORS: dict[tuple[str, str], jsonschema.Draft202012Validator] = {}


def crd_problems(obj: dict[str, Any]) -> list[str]:
    key = (obj["apiVersion"], obj["kind"])
    model = CRDS[key]
    problems = []
    try:
        model.model_validate(obj)
    except Exception as exc:  # pydantic.ValidationError: types, enums, patterns of the CRD schema
        problems.append(str(exc))
    if key not in _VALIDATORS:
        _VALIDATORS[key] = jsonschema.Draft202012Validator(_strict(model.model_json_schema(by_alias=True)))
    problems += [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in _VALIDATORS[key].iter_errors(obj)]
    return problems


def core_problems(obj: dict[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{obj['kind']} {obj['metadata']['name']}: {exc}"]
    return []


def manifests(files: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, text in files.items():
        if "/kubernetes/" in path and path.endswith(".yaml"):
            for obj in yaml.safe_load_all(text):
                if obj:
                    yield path, obj


@pytest.fixture(scope="module")
def cfg() -> dict[str, Any]:
    return obsconfig.load(ROOT / "obsbundle.yaml")


@pytest.fixture(scope="module")
def files(cfg: dict[str, Any]) -> dict[str, str]:
    return generators.render_all(cfg)


def test_every_manifest_validates_against_its_schema(files: dict[str, str]) -> None:
    problems, kinds = [], set()
    for path, obj in manifests(files):
        kinds.add(obj["kind"])
        if obj["kind"] in CORE_KINDS:
            problems += [f"{path}: {p}" for p in core_problems(obj)]
        else:
            problems += [f"{path}: {obj['kind']}: {p}" for p in crd_problems(obj)]
    assert problems == []
    assert kinds == {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "ServiceMonitor",
                     "PodMonitor", "ScrapeConfig", "PrometheusRule", "Alertmanager", "ScaledObject"}


def test_validators_reject_a_misspelt_field_and_a_bad_value(files: dict[str, str]) -> None:
    objs = {obj["kind"]: obj for _, obj in manifests(files)}
    monitor = copy.deepcopy(objs["ServiceMonitor"])
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    assert any("intervall" in p for p in crd_problems(monitor))
    monitor = copy.deepcopy(objs["ServiceMonitor"])
    monitor["spec"]["endpoints"][0]["interval"] = "soon"
    assert crd_problems(monitor)
    scaled = copy.deepcopy(objs["ScaledObject"])
    scaled["spec"]["minReplicaCount"] = "two"
    assert crd_problems(scaled)
    deployment = copy.deepcopy(objs["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = True  # wrong level
    assert core_problems(deployment)


def test_exporter_deployments_are_hardened_and_probed(files: dict[str, str], cfg: dict[str, Any]) -> None:
    deployments = [o for _, o in manifests(files) if o["kind"] == "Deployment"]
    assert sorted(d["metadata"]["name"] for d in deployments) == sorted(
        f"obsbundle-exporter-{k}" for k in ("postgres", "redis", "temporal", "probes"))
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] != 0
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
        assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
        # every connection string comes from the Secret, none is inline
        for env in container["env"]:
            assert env["valueFrom"]["secretKeyRef"]["name"] == kubernetes.SECRET
    config_map = next(o for _, o in manifests(files) if o["metadata"]["name"] == kubernetes.CONFIG_MAP)
    exporter_cfg = yaml.safe_load(config_map["data"]["obsbundle.yaml"])
    assert exporter_cfg["sources"]["postgres"][0]["dsn"] == "${OBSBUNDLE_POSTGRES_MAIN_DSN}"
    assert exporter_cfg["sources"]["redis"][0]["url"] == "${OBSBUNDLE_REDIS_CACHE_URL}"
    # and the exporters' config loader accepts that file once the Secret's variables are set
    values = {"DSN": "postgresql://db/x", "URL": "redis://r:6379/0", "ADDRESS": "temporal:7233",
              "METRICS_URL": "http://temporal:9090/metrics"}
    names = {e["name"] for d in deployments for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert names == {"OBSBUNDLE_POSTGRES_MAIN_DSN", "OBSBUNDLE_REDIS_CACHE_URL", "OBSBUNDLE_TEMPORAL_MAIN_ADDRESS",
                     "OBSBUNDLE_TEMPORAL_MAIN_METRICS_URL"}
    env = {n: next(v for k, v in sorted(values.items(), key=lambda kv: -len(kv[0])) if n.endswith(k)) for n in names}
    loaded = obsconfig.parse(config_map["data"]["obsbundle.yaml"], environ=env)
    assert loaded["sources"]["redis"][0]["url"] == "redis://r:6379/0"


def test_secrets_in_the_config_never_reach_deploy_files() -> None:
    cfg = obsconfig.parse(yaml.safe_dump({"sources": {
        "postgres": [{"name": "main", "dsn": "postgresql://app:pg-s3cret-pw@db:5432/app"}],
        "redis": [{"name": "cache", "url": "redis://:rd-s3cret-pw@cache:6379/0"}]}}))
    rendered = generators.render_all(cfg)
    leaks = [p for p, t in rendered.items() if "s3cret" in t]
    assert leaks == []


def test_autoscaling_defaults_are_the_seeds_numbers_and_follow_config(files: dict[str, str]) -> None:
    objs = {obj["kind"]: obj for _, obj in manifests(files)}
    hpa, scaled = objs["HorizontalPodAutoscaler"]["spec"], objs["ScaledObject"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]} == {
        "cpu": 70, "memory": 80}
    assert hpa["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 300
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 5)
    assert scaled["triggers"] == [{"type": "prometheus", "metadata": {
        "serverAddress": "http://victoria-metrics:8428", "query": "sum(task_queue:temporal_backlog:sum)",
        "threshold": "100"}}]
    custom = obsconfig.parse(yaml.safe_dump({"deploy": {"query_url": "http://mimir:8080/prometheus", "scaling": {
        "min_replicas": 3, "max_replicas": 9, "cpu_target_ratio": 0.6, "cpu_scale_down_for": "15m",
        "backlog_per_replica": 40}}}))
    hpa2, scaled2 = kubernetes.hpa(custom)["spec"], kubernetes.scaled_object(custom)["spec"]
    assert (hpa2["minReplicas"], hpa2["maxReplicas"], hpa2["metrics"][0]["resource"]["target"]["averageUtilization"],
            hpa2["behavior"]["scaleDown"]["stabilizationWindowSeconds"]) == (3, 9, 60, 900)
    assert scaled2["triggers"][0]["metadata"]["threshold"] == "40"
    assert scaled2["triggers"][0]["metadata"]["serverAddress"] == "http://mimir:8080/prometheus"


def test_shards_partition_the_targets(cfg: dict[str, Any]) -> None:
    """With N shards every target is kept by exactly one shard config (hashmod as Prometheus does it)."""
    targets = [f"10.0.0.{i}:9121" for i in range(1, 31)]
    custom = obsconfig.parse(yaml.safe_dump({"deploy": {"shards": 3, "targets": {"redis": targets}},
                                             "sources": {"redis": [{"name": "c", "url": "redis://x:6379/0"}]}}))
    kept: dict[str, list[int]] = {}
    for shard in range(3):
        shard_cfg = prometheus.agent_shard(custom, shard)
        assert shard_cfg["global"]["external_labels"] == {"cluster": "obsbundle", "shard": str(shard)}
        (job,) = [j for j in shard_cfg["scrape_configs"] if j["job_name"] == "redis"]
        keep = job["relabel_configs"][1]
        assert keep == {"source_labels": ["__tmp_hash"], "regex": str(shard), "action": "keep"}
        for t in job["static_configs"][0]["targets"]:
            if prometheus.hashmod(t, 3) == shard:
                kept.setdefault(t, []).append(shard)
    assert sorted(kept) == sorted(targets) and all(len(v) == 1 for v in kept.values())
    assert min(len([t for t in targets if prometheus.hashmod(t, 3) == s]) for s in range(3)) > 0


def test_systemd_units_pass_systemd_analyze_verify(cfg: dict[str, Any], tmp_path: Path) -> None:
    local = copy.deepcopy(cfg)
    local["deploy"]["bin"] = which("obsbundle")  # verify checks that ExecStart's binary exists
    units = systemd.render(local, "")
    assert sorted(Path(p).name for p in units) == [f"obsbundle-exporter-{k}.service"
                                                     for k in ("postgres", "probes", "redis", "temporal")]
    for path, text in units.items():
        assert "DynamicUser=yes" in text and "ProtectSystem=strict" in text and "NoNewPrivileges=yes" in text
        (tmp_path / Path(path).name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.iterdir())],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    (tmp_path / "typo.service").write_text(units[systemd.unit_file("redis")].replace("ProtectHome", "ProtectHom"))
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "typo.service")],
                          capture_output=True, text=True, timeout=60)
    assert "Unknown key" in done.stderr  # the check above would have seen a mistake


def test_deploy_files_are_drift_checked(cfg: dict[str, Any], tmp_path: Path) -> None:
    rendered = generators.render_all(cfg)
    deploy = {p: t for p, t in rendered.items() if p.startswith("deploy/")}
    for path, text in deploy.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    assert generators.drift(deploy, tmp_path) == []
    (tmp_path / prometheus.shard_file(0)).write_text("edited\n")
    (tmp_path / "deploy/kubernetes/stray.yaml").write_text("kind: x\n")
    assert generators.drift(deploy, tmp_path) == [
        f"{prometheus.shard_file(0)}: differs from its generator (edited by hand or stale)",
        "deploy/kubernetes/stray.yaml: not produced by any generator"]
