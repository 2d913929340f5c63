"""Reading Prometheus text exposition back into plain dicts, for exact-value assertions."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def parse_metrics(text: str) -> Samples:
    """sample name -> {sorted label items: value}; counters appear under their `_total` name."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def by_tenant(samples: Samples, name: str, **match: str) -> dict[str, float]:
    """{tenant_id: value} for one sample name, filtered by exact label matches."""
    out: dict[str, float] = {}
    for labels, value in samples.get(name, {}).items():
        d = dict(labels)
        if all(d.get(k) == v for k, v in match.items()):
            out[d.get("tenant_id", "")] = out.get(d.get("tenant_id", ""), 0.0) + value
    return out


def sample_sum(samples: Samples, name: str, **match: str) -> float:
    """Sum of one sample name's values whose labels include `match`, over every tenant."""
    return sum(by_tenant(samples, name, **match).values())
