"""Tenant resolution: rules, reserved values, hostile names and the cardinality cap."""

from __future__ import annotations

import re

import pytest

from obsbundle import config
from obsbundle.tenancy import OVERFLOW, RESERVED, SHARED, UNASSIGNED, TenantResolver, normalize

CLEAN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@pytest.fixture
def resolver() -> TenantResolver:
    return TenantResolver.from_config(config.parse(""), "postgres")


def test_default_rules_recognise_each_source() -> None:
    cfg = config.parse("")
    assert TenantResolver.from_config(cfg, "postgres").resolve("schema", "tenant_acme") == "acme"
    assert TenantResolver.from_config(cfg, "postgres").resolve("role", "tenant_globex") == "globex"
    assert TenantResolver.from_config(cfg, "postgres").resolve("application_name", "tenant=initech;api") == "initech"
    assert TenantResolver.from_config(cfg, "redis").resolve("key", "tenant:acme:session:42") == "acme"
    assert TenantResolver.from_config(cfg, "temporal").resolve("namespace", "tenant-acme") == "acme"
    assert TenantResolver.from_config(cfg, "temporal").resolve("task_queue", "tenant-acme-agents") == "acme"


def test_non_matching_and_missing_names_are_unassigned(resolver: TenantResolver) -> None:
    assert resolver.resolve("schema", "public") == UNASSIGNED
    assert resolver.resolve("schema", "") == UNASSIGNED
    assert resolver.resolve("schema", None) == UNASSIGNED
    assert resolver.resolve("no_such_rule", "tenant_acme") == UNASSIGNED


def test_reserved_values_start_with_underscore_and_tenants_never_do() -> None:
    assert all(value.startswith("_") for value in RESERVED)
    assert SHARED == "_shared" and UNASSIGNED == "_unassigned" and OVERFLOW == "_overflow"
    for raw in ["_shared", "_overflow", "__x", "_", "-a", ".a"]:
        tenant = normalize(raw)
        assert not tenant.startswith("_"), raw
        assert tenant not in RESERVED


def test_a_tenant_named_like_a_reserved_value_cannot_impersonate_it() -> None:
    resolver = TenantResolver({"key": r"^tenant:(?P<tenant>[^:]+):"}, max_tenants=5000)
    assert resolver.resolve("key", "tenant:_shared:x") not in RESERVED


@pytest.mark.parametrize(
    "raw",
    [
        "O'Reilly",
        'quo"te',
        "back\\slash",
        "new\nline",
        "tab\there",
        "ünïcødé",
        "数据",
        "emoji🙂",
        "x" * 300,
        "UPPER",
        "sp ace",
        "a{b}c",
        "\x00nul",
        "\ud800",  # lone surrogate
    ],
)
def test_hostile_names_normalise_to_clean_bounded_ids(raw: str) -> None:
    tenant = normalize(raw)
    assert CLEAN.match(tenant), tenant
    assert len(tenant) <= 63
    assert normalize(raw) == tenant  # deterministic


def test_clean_ids_pass_through_unchanged() -> None:
    for raw in ["acme", "a", "tenant-42", "acme_corp", "a.b", "x" * 63]:
        assert normalize(raw) == raw


@pytest.mark.parametrize(
    "a,b",
    [
        ("Acme", "acme"),
        ("ACME", "Acme"),
        ("a b", "a_b"),
        ("a-b!", "a-b?"),
        ("x" * 300, "x" * 299 + "y"),
        ("x" * 64, "x" * 63),
        ("café", "cafe"),
        ("数据", "数字"),
    ],
)
def test_names_that_would_collide_after_folding_stay_distinct(a: str, b: str) -> None:
    assert normalize(a) != normalize(b)


def test_cap_sends_later_tenants_to_overflow_and_is_sticky() -> None:
    resolver = TenantResolver({"schema": r"^t_(?P<tenant>.+)$"}, max_tenants=2)
    assert resolver.resolve("schema", "t_a") == "a"
    assert resolver.resolve("schema", "t_b") == "b"
    assert resolver.resolve("schema", "t_c") == OVERFLOW
    assert resolver.resolve("schema", "t_a") == "a"  # admitted tenants keep their id
    assert resolver.resolve("schema", "t_c") == OVERFLOW  # and latecomers stay in overflow
    assert resolver.admitted == 2
    assert resolver.overflowed == 2
    assert resolver.resolve("schema", "public") == UNASSIGNED  # unassigned never counts against the cap


def test_resolve_first_takes_the_first_matching_rule(resolver: TenantResolver) -> None:
    assert resolver.resolve_first([("role", "postgres"), ("application_name", "tenant=acme")]) == "acme"
    assert resolver.resolve_first([("role", "tenant_globex"), ("application_name", "tenant=acme")]) == "globex"
    assert resolver.resolve_first([("role", "postgres"), ("application_name", "psql")]) == UNASSIGNED
