"""Generated Grafana data sources: Prometheus exemplars -> traces -> Loki logs, URLs from config."""

from __future__ import annotations

import pytest
import yaml

from generators import datasources
from obsbundle import config as obsconfig
from obsbundle.errors import ConfigError

URLS = """
datasources:
  prometheus_url: http://prom.internal:9090
  loki_url: https://loki.internal:3100
  traces_url: http://tempo.internal:3200
  traces_kind: tempo
  loki_tenant: platform
dashboards: {datasource_uid: prom-main}
"""


def test_links_between_the_three_data_sources_use_the_configured_urls_and_uids():
    cfg = obsconfig.parse(URLS)
    files = datasources.render(cfg)
    assert list(files) == ["dashboards/provisioning/datasources.yaml"]
    sources = {s["type"]: s for s in yaml.safe_load(files[datasources.PATH])["datasources"]}
    assert set(sources) == {"prometheus", "loki", "tempo"}
    prom, loki, tempo = sources["prometheus"], sources["loki"], sources["tempo"]
    assert (prom["uid"], prom["url"]) == ("prom-main", "http://prom.internal:9090")
    assert prom["jsonData"]["exemplarTraceIdDestinations"] == [{"name": "trace_id", "datasourceUid": "traces"}]
    assert loki["url"] == "https://loki.internal:3100"
    field = loki["jsonData"]["derivedFields"][0]
    assert (field["matcherType"], field["matcherRegex"], field["datasourceUid"]) == ("label", "trace_id", "traces")
    assert (loki["jsonData"]["httpHeaderName1"], loki["secureJsonData"]["httpHeaderValue1"]) == (
        "X-Scope-OrgID", "platform")
    to_logs = tempo["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == "loki" and to_logs["customQuery"] is True
    assert 'tenant_id="$${__span.tags.tenant_id}"' in to_logs["query"]
    assert 'trace_id="$${__trace.traceId}"' in to_logs["query"]
    assert datasources.lint(cfg, files) == []


def test_no_section_no_file_and_a_broken_link_or_bad_url_is_reported():
    assert datasources.render(obsconfig.parse("{}")) == {}
    cfg = obsconfig.parse(URLS)
    files = datasources.render(cfg)
    broken = {datasources.PATH: files[datasources.PATH].replace("datasourceUid: loki", "datasourceUid: lokki")}
    assert datasources.lint(cfg, broken) == [
        f"{datasources.PATH}: Traces links to unknown data source uid 'lokki'"]
    with pytest.raises(ConfigError, match=r"^datasources\.loki_url"):
        obsconfig.parse(URLS.replace("https://loki.internal:3100", "loki.internal:3100"))
