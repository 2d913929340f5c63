"""Load the one YAML config: expand ${VAR}, merge packaged defaults, validate with jsonschema.

Every failure becomes a ConfigError whose message is one line naming the path and the problem,
e.g. ``sources.postgres[0].dsn: required``.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import validators
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from obsbundle.errors import ConfigError

SCHEMA_PACKAGE = "obsbundle.schema"
ROOT_SCHEMA = "config.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, path: str = "", environ: Mapping[str, str] | None = None) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string of a parsed YAML document."""
    env = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {k: expand_env(v, join_path(path, k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{path}[{i}]", env) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and (env[name] != "" or default is None):
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{path or '<root>'}: environment variable {name} is not set")

    return _ENV_REF.sub(substitute, value)


def join_path(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else in the override replaces the base."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(override)


def _schema_resource(name: str) -> dict[str, Any]:
    text = resources.files(SCHEMA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def schema_registry() -> Registry:
    """Every schema file of the package, addressable as ``obsbundle:<file>``."""
    registry: Registry = Registry()
    for entry in resources.files(SCHEMA_PACKAGE).iterdir():
        if entry.name.endswith(".yaml"):
            contents = _schema_resource(entry.name)
            registry = registry.with_resource(
                f"obsbundle:{entry.name}", Resource.from_contents(contents, default_specification=DRAFT202012)
            )
    return registry


def _default_of(subschema: Any) -> tuple[bool, Any]:
    """A property's `default`, also when it sits in the file its `$ref` names (a section's own
    default, e.g. `tenancy: {}`), so each default is written once, next to its property."""
    if not isinstance(subschema, dict):
        return False, None
    if "default" in subschema:
        return True, subschema["default"]
    ref = subschema.get("$ref")
    if isinstance(ref, str) and ref.startswith("obsbundle:") and "#" not in ref:
        target = _schema_resource(ref.removeprefix("obsbundle:"))
        if "default" in target:
            return True, target["default"]
    return False, None


def _with_defaults(validator_class: type) -> type:
    """Fill `default` values of object properties while validating (jsonschema's documented recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                found, default = _default_of(subschema)
                if found:
                    instance.setdefault(name, copy.deepcopy(default))
        yield from validate_properties(validator, properties, instance, schema)

    def duration_bound(keyword: str) -> Any:
        """`minDuration`/`maxDuration`: bounds on a duration string, compared in seconds."""

        def check(validator, bound, instance, schema):  # type: ignore[no-untyped-def]
            if not isinstance(instance, str):
                return
            try:
                seconds = parse_duration(instance)
            except ConfigError:
                return  # the pattern reports it
            limit = parse_duration(bound)
            if (seconds < limit) if keyword == "minDuration" else (seconds > limit):
                yield jsonschema.ValidationError(f"{keyword} {bound}", validator=keyword, validator_value=bound)

        return check

    return validators.extend(
        validator_class,
        {"properties": set_defaults, "minDuration": duration_bound("minDuration"),
         "maxDuration": duration_bound("maxDuration")},
    )


_Validator = _with_defaults(jsonschema.Draft202012Validator)


_SECRET_KEYED = {"api_keys"}  # maps whose keys are secrets: a path names `<key>`, never the key


def _describe(error: jsonschema.ValidationError) -> str:
    """A one-line message for a validation error, never echoing the offending value (or a key
    that is itself a secret)."""
    path = ""
    parent: Any = None
    for part in error.absolute_path:
        path = join_path(path, "<key>" if parent in _SECRET_KEYED and isinstance(part, str) else part)
        parent = part
    kind, arg = error.validator, error.validator_value
    if kind == "required":
        missing = [name for name in arg if isinstance(error.instance, dict) and name not in error.instance]
        return f"{join_path(path, missing[0]) if missing else path}: required"
    if kind == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"{join_path(path, extra[0]) if extra else path}: unknown key"
    messages = {
        "type": lambda: f"must be of type {arg if isinstance(arg, str) else ' or '.join(arg)}",
        "enum": lambda: "must be one of " + ", ".join(repr(v) for v in arg),
        "const": lambda: f"must be {arg!r}",
        "pattern": lambda: f"must match {arg}",
        "format": lambda: "is not a valid regular expression" if arg == "regex" else f"is not a valid {arg}",
        "minimum": lambda: f"must be >= {arg}",
        "minDuration": lambda: f"must be at least {arg}",
        "maxDuration": lambda: f"must be at most {arg}",
        "maximum": lambda: f"must be <= {arg}",
        "exclusiveMinimum": lambda: f"must be > {arg}",
        "minLength": lambda: "must not be empty" if arg == 1 else f"must have at least {arg} characters",
        "minItems": lambda: f"must have at least {arg} item(s)",
        "uniqueItems": lambda: "must not repeat items",
    }
    detail = messages.get(kind, lambda: f"invalid ({kind})")()
    return f"{path or '<root>'}: {detail}"


def validate(document: dict[str, Any]) -> None:
    """Validate (filling defaults in place); raise ConfigError with the most relevant problem."""
    schema = _schema_resource(ROOT_SCHEMA)
    validator = _Validator(schema, registry=schema_registry(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_describe(best))
    for path, pattern in _tenancy_rules(document.get("tenancy", {})):
        if "tenant" not in re.compile(pattern).groupindex:
            raise ConfigError(f"{path}: regular expression needs a named group (?P<tenant>...)")


def validate_section(name: str, value: dict[str, Any]) -> dict[str, Any]:
    """Validate one top-level section on its own (defaults filled in place), e.g. a service's `app`
    block, so a problem elsewhere in the file cannot stop a service from starting."""
    document = {name: value}
    schema = {"type": "object", "properties": {name: {"$ref": f"obsbundle:{name}.yaml"}}}
    validator = _Validator(schema, registry=schema_registry(), format_checker=jsonschema.FormatChecker())
    errors = list(validator.iter_errors(document))
    if errors:
        raise ConfigError(_describe(jsonschema.exceptions.best_match(errors)))
    return document[name]


def _tenancy_rules(tenancy: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for source in ("postgres", "redis", "temporal"):
        for key, value in (tenancy.get(source) or {}).items():
            if isinstance(value, str) and key not in ("search_attribute", "tenants_table"):  # not regexes
                yield f"tenancy.{source}.{key}", value


def defaults() -> dict[str, Any]:
    """The packaged defaults every config is merged over (thresholds, SLOs, routing); the other
    sections' defaults are the schema's `default` values."""
    text = resources.files("obsbundle").joinpath("default.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping key given twice (YAML says keys are unique; PyYAML
    silently keeps the last one). Merge keys (`<<`) may still be overridden."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: SafeConstructor reports it
            if duplicate:  # the key itself is not echoed: it may be an API key
                raise yaml.constructor.ConstructorError(
                    None, None, "duplicate key (already given earlier in this mapping)", key_node.start_mark
                )
        return super().construct_mapping(node, deep)


def safe_load_unique(text: str, source: str = "<config>") -> Any:
    """yaml.safe_load that rejects duplicate keys; errors are one-line ConfigErrors with the position."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}:{where}: {problem}") from None


def parse(text: str, source: str = "<config>", environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse, expand, merge over defaults and validate a config document."""
    raw = safe_load_unique(text, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    document = deep_merge(defaults(), expand_env(raw, environ=environ))
    validate(document)
    return document


def load(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read and validate the config file at `path`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc.__class__.__name__}") from None
    return parse(text, str(file), environ)


def parse_duration(text: str | int | float) -> float:
    """Prometheus-style duration ("90s", "5m", "1h30m", "2d") in seconds."""
    if isinstance(text, int | float):
        return float(text)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"{text!r}: not a duration (use 30s, 5m, 1h)")
    return sum(float(n) * units[u] for n, u in parts)
