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
    for raw in ["acme", "a", "tenant-42", "acme_corp", "a.b", "x" * 63, "acme-37036cd8", "a-0123456789abcde"]:
        assert normalize(raw) == raw


def test_folded_ids_carry_a_64_bit_hash_and_clean_names_that_look_folded_are_folded_too() -> None:
    folded = normalize("Acme")
    assert re.fullmatch(r"acme-[0-9a-f]{16}", folded)
    assert normalize(folded) != folded  # a name spelled like another's folded form is folded itself
    assert normalize(folded) != normalize("Acme")


@pytest.mark.parametrize(("kind", "template", "rule"), [
    ("key", "tenant:{}:session:1", r"^tenant:(?P<tenant>[^:]+):"),
    ("schema", "tenant_{}", r"^tenant_(?P<tenant>.+)$"),  # quoted schema names keep their case
    ("application_name", "tenant={};api", r"^tenant=(?P<tenant>[^;]+)"),
])
def test_a_clean_name_equal_to_another_names_folded_form_does_not_merge(kind: str, template: str, rule: str) -> None:
    resolver = TenantResolver({kind: rule})
    old_style = "acme-" + __import__("hashlib").sha256(b"Acme").hexdigest()[:8]  # the 32-bit scheme's form
    new_style = normalize("Acme")
    a = resolver.resolve(kind, template.format("Acme"))
    assert a == new_style
    for lookalike in (old_style, new_style):
        assert resolver.resolve(kind, template.format(lookalike)) != a, lookalike


def test_raw_bytes_are_hashed_not_replacement_characters() -> None:
    assert normalize(b"\xff\xfe") != normalize(b"\xfe\xff")
    assert normalize(b"\xff\xfe") == normalize(b"\xff\xfe".decode("utf-8", "surrogateescape"))
    assert normalize(b"acme") == "acme"
    assert normalize("café".encode()) == normalize("café")


def test_non_utf8_redis_prefixes_resolve_to_distinct_tenants() -> None:
    from collectors.redis.keyspace import _text

    resolver = TenantResolver({"key": r"^tenant:(?P<tenant>[^:]+):"})
    a = resolver.resolve("key", _text(b"tenant:\xff\xfe:k"))
    b = resolver.resolve("key", _text(b"tenant:\xfe\xff:k"))
    assert a != b and UNASSIGNED not in (a, b)


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
    assert resolver.overflowed == 1  # distinct ids refused, not refusals: the same in every exporter
    assert resolver.resolve("schema", "public") == UNASSIGNED  # unassigned never counts against the cap


def test_resolve_first_takes_the_first_matching_rule(resolver: TenantResolver) -> None:
    assert resolver.resolve_first([("role", "postgres"), ("application_name", "tenant=acme")]) == "acme"
    assert resolver.resolve_first([("role", "tenant_globex"), ("application_name", "tenant=acme")]) == "globex"
    assert resolver.resolve_first([("role", "postgres"), ("application_name", "psql")]) == UNASSIGNED


def test_volatile_names_cannot_take_an_authoritative_tenants_slot() -> None:
    resolver = TenantResolver({"schema": r"^tenant_(?P<tenant>.+)$", "application_name": r"^tenant=(?P<tenant>[^;]+)"},
                              max_tenants=20)
    for i in range(19):
        assert resolver.resolve("schema", f"tenant_t{i}") == f"t{i}"
    junk = [resolver.resolve("application_name", f"tenant=junk{i}") for i in range(15)]
    assert junk[:2] == ["junk0", "junk1"] and set(junk[2:]) == {OVERFLOW}  # volatile budget: 20 // 10
    assert resolver.resolve("schema", "tenant_newco") == "newco"  # the real new schema still gets in
    assert resolver.resolve("application_name", "tenant=t3;api") == "t3"  # known tenants resolve as usual
    assert resolver.overflowed == 13


def test_unseen_tenants_are_released_and_return_under_the_same_id() -> None:
    now = [0.0]
    resolver = TenantResolver({"schema": r"^t_(?P<tenant>.+)$"}, max_tenants=2, release_after=600,
                              clock=lambda: now[0])
    assert [resolver.resolve("schema", n) for n in ("t_a", "t_b", "t_c")] == ["a", "b", OVERFLOW]
    for _ in range(20):  # a and b keep being seen every minute: never released, c stays out
        now[0] += 60
        assert [resolver.resolve("schema", n) for n in ("t_a", "t_b", "t_c")] == ["a", "b", OVERFLOW]
    now[0] += 60
    assert resolver.resolve("schema", "t_a") == "a"  # b stops being seen
    now[0] += 700
    assert resolver.resolve("schema", "t_a") == "a"
    assert resolver.resolve("schema", "t_c") == "c"  # b's slot was released
    assert resolver.resolve("schema", "t_b") == OVERFLOW
    assert resolver.overflowed == 2  # c once, b once


def test_release_after_and_volatile_budget_are_configurable_and_bounded() -> None:
    cfg = config.parse("tenancy:\n  release_after: 10m\n  max_volatile_tenants: 3\n")
    resolver = TenantResolver.from_config(cfg, "postgres")
    assert (resolver.release_after, resolver.max_volatile) == (600, 3)
    with pytest.raises(config.ConfigError, match=r"tenancy\.release_after: must be at least 1m"):
        config.parse("tenancy:\n  release_after: 5s\n")
