"""Per-scope instance configuration: schemas, YAML templates, merging and inheritance.

A configuration is built from layers, each deep-merged over the one before:

1. the scope's template (``config/instances/<scope>-instance.yaml``), which holds every key;
2. a deployment's copy of that file in ``$HOPPER_CONFIG_DIR``, if it has one;
3. the instance's *overrides*: only the keys its creator (or a later PATCH) gave.

The library stores layer 3 alone, so "this instance set the key" stays knowable: the full
config is ``full_config(scope, overrides)`` and the effective one (``effective_config``) also
takes the ``INHERITABLE_KEYS`` an ancestor set explicitly. Every schema rejects unknown keys;
errors name each bad field by its dotted path. See docs/configuration.md.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import marshmallow
import yaml
from marshmallow import RAISE, Schema, fields, validate

from hopper_graph.enums import HopperScope
from hopper_graph.errors import TemplateError, ValidationError
from hopper_graph.resources import templates_dir
from hopper_graph.validation import (
    UNKNOWN_FIELD,
    StrictBoolean,
    extend_errors,
    flatten_errors,
    unknown_field,
)

__all__ = [
    "CONFIG_DIR_ENV",
    "DEFAULT_PROVENANCE",
    "INHERITABLE_KEYS",
    "ROUTING_FALLBACKS",
    "ROUTING_STRATEGIES",
    "GlobalConfig",
    "InstanceConfig",
    "InstanceConfigSchema",
    "OrchestrationConfig",
    "ProjectConfig",
    "config_class_for",
    "effective_config",
    "full_config",
    "full_config_json",
    "load_templates",
    "max_child_instances",
    "max_depth",
    "merge_config",
    "register_scope_config",
    "registered_scopes",
    "resolve_config",
    "scope_defaults",
    "unregister_scope_config",
    "update_overrides",
    "validate_config",
    "validate_overrides",
]

Config = dict[str, Any]

CONFIG_DIR_ENV = "HOPPER_CONFIG_DIR"
"""Environment variable naming a directory whose templates take precedence, file by file."""

INHERITABLE_KEYS: tuple[str, ...] = ("health", "tags")
"""Dotted keys (a section covers every key under it) that an instance inherits from its
nearest ancestor that sets them explicitly, instead of taking its own scope's default.
``limits.max_depth`` is not here: it bounds the whole tree and is read from the GLOBAL
instance alone (see ``max_depth``)."""

DEFAULT_PROVENANCE = "default"
"""Provenance of a key whose value comes from the template, not from any instance."""

ROUTING_STRATEGIES = ("intelligent", "rules", "round_robin", "manual")
"""How GLOBAL routes work to projects: model-assisted, rule-based, in turn, or by a person."""

ROUTING_FALLBACKS = (*ROUTING_STRATEGIES, "none")
"""What GLOBAL falls back to when its strategy cannot decide; ``none`` leaves work unrouted."""

_ERROR_ROOT = "config"
_MISSING = object()


# --- field helpers ------------------------------------------------------------------------


def _bool() -> fields.Field:
    return StrictBoolean(required=True)


def _int(minimum: int, maximum: int | None = None) -> fields.Field:
    """A required integer in range; ``strict`` refuses floats, numeric strings and booleans."""
    return fields.Integer(
        required=True, strict=True, validate=validate.Range(min=minimum, max=maximum)
    )


def _choice(choices: tuple[str, ...]) -> fields.Field:
    return fields.String(required=True, validate=validate.OneOf(choices))


def _names() -> fields.Field:
    """A list of non-empty strings (tags, capabilities); a new list replaces the old one."""
    return fields.List(fields.String(validate=validate.Length(min=1)), required=True)


def _section(schema: type[Schema]) -> fields.Field:
    return fields.Nested(schema, required=True)


# --- schemas ------------------------------------------------------------------------------


class _Strict(Schema):
    """Every schema here refuses keys it does not know."""

    class Meta:
        unknown = RAISE


class HealthSchema(_Strict):
    heartbeat_timeout_seconds = _int(1)


class LimitsSchema(_Strict):
    max_child_instances = _int(1)


class GlobalLimitsSchema(LimitsSchema):
    max_depth = _int(1)


class RoutingSchema(_Strict):
    strategy = _choice(ROUTING_STRATEGIES)
    fallback = _choice(ROUTING_FALLBACKS)


class GlobalDelegationSchema(_Strict):
    enabled = _bool()
    auto_create_project_instances = _bool()


class ProjectDelegationSchema(_Strict):
    auto_delegate = _bool()
    orchestration_threshold = _int(1, 5)
    auto_create_orchestrations = _bool()


class ExecutionSchema(_Strict):
    max_concurrent_tasks = _int(1)
    retry_on_failure = _bool()
    max_retries = _int(0)
    worker_timeout_seconds = _int(1)


class RetentionSchema(_Strict):
    purge_archived = _bool()
    archived_ttl_seconds = _int(0)


class InstanceConfigSchema(_Strict):
    """Keys every scope has; a plug-in scope's schema must extend this one."""

    health = _section(HealthSchema)
    tags = _names()
    limits = _section(LimitsSchema)


class GlobalSchema(InstanceConfigSchema):
    routing = _section(RoutingSchema)
    delegation = _section(GlobalDelegationSchema)
    limits = _section(GlobalLimitsSchema)


class ProjectSchema(InstanceConfigSchema):
    delegation = _section(ProjectDelegationSchema)
    capabilities = _names()


class OrchestrationSchema(InstanceConfigSchema):
    execution = _section(ExecutionSchema)
    retention = _section(RetentionSchema)


# --- config classes -----------------------------------------------------------------------


class InstanceConfig:
    """One scope's configuration: its schema, its template and the checks built on them.

    Not instantiated: configs are plain dicts (they are stored as such), and the class is the
    registry entry that knows how to default and validate them.
    """

    scope: ClassVar[str]
    schema: ClassVar[type[Schema]]
    template_name: ClassVar[str]

    @classmethod
    def defaults(cls) -> Config:
        """A fresh copy of the scope's validated template (without its ``scope:`` line)."""
        return copy.deepcopy(_templates.get(_scope_key(cls.scope)))

    @classmethod
    def validate(cls, config: Any) -> Config:
        """Check a complete config: every key present, known, of the right type and range."""
        return _load(cls.schema, config, partial=False)

    @classmethod
    def validate_overrides(cls, given: Any) -> Config:
        """Check a partial config; ``None`` values mean "unset" and are dropped, but must
        still name known keys (a misspelt key is an error, not a silent no-op)."""
        if given is None:
            return {}
        if not isinstance(given, Mapping):
            return _load(cls.schema, given, partial=True)
        unknown = {
            _join(_ERROR_ROOT, path): [UNKNOWN_FIELD]
            for path in _null_paths(given)
            if not _knows(cls.schema(), path.split("."))
        }
        loaded = _load(cls.schema, _without_nones(given), partial=True, errors=unknown)
        return _without_empty_maps(loaded)


class GlobalConfig(InstanceConfig):
    """The root: how work is routed to projects and how deep the tree may grow."""

    scope = HopperScope.GLOBAL
    schema = GlobalSchema
    template_name = "global-instance.yaml"


class ProjectConfig(InstanceConfig):
    """A project: when to hand work to orchestration runs, and what it can do."""

    scope = HopperScope.PROJECT
    schema = ProjectSchema
    template_name = "project-instance.yaml"


class OrchestrationConfig(InstanceConfig):
    """A run: how it executes its tasks and how long it is kept once archived."""

    scope = HopperScope.ORCHESTRATION
    schema = OrchestrationSchema
    template_name = "orchestration-instance.yaml"


# --- registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Registration:
    config_cls: type[InstanceConfig]
    template: Path | None  # the packaged default file; None: template_name in the package


_REGISTRY: dict[str, _Registration] = {
    str(cls.scope): _Registration(cls, None)
    for cls in (GlobalConfig, ProjectConfig, OrchestrationConfig)
}


def _scope_key(scope: str | HopperScope) -> str:
    """Scopes are named in upper case everywhere; accept any case from callers."""
    return str(scope).upper()


def register_scope_config(
    scope: str | HopperScope, config_cls: type[InstanceConfig], template: str | Path | None = None
) -> None:
    """Plug a scope's config class in, replacing any earlier one for that scope.

    ``template`` is the file holding the scope's defaults (default: ``config_cls.template_name``
    in the packaged folder); ``$HOPPER_CONFIG_DIR`` may still layer over it. The template is
    loaded and validated now, so a broken one fails here and registers nothing.
    """
    key = _scope_key(scope)
    _check_config_class(key, config_cls)
    registration = _Registration(config_cls, Path(template) if template is not None else None)
    with _templates.lock:
        loaded = _load_template(key, registration, _templates.override_dir())
        _REGISTRY[key] = registration
        _templates.templates[key] = loaded


def _check_config_class(key: str, config_cls: type[InstanceConfig]) -> None:
    if not (isinstance(config_cls, type) and issubclass(config_cls, InstanceConfig)):
        raise TypeError(f"{config_cls!r} is not an InstanceConfig subclass")
    if not issubclass(getattr(config_cls, "schema", object), InstanceConfigSchema):
        raise TypeError(f"{config_cls.__name__}.schema must extend InstanceConfigSchema")
    if _scope_key(getattr(config_cls, "scope", "")) != key:
        raise ValueError(f"{config_cls.__name__}.scope must be {key!r}")
    if not getattr(config_cls, "template_name", ""):
        raise ValueError(f"{config_cls.__name__}.template_name is not set")


def unregister_scope_config(scope: str | HopperScope) -> None:
    """Remove a scope's config class and its cached template (plug-ins and tests)."""
    key = _scope_key(scope)
    with _templates.lock:
        _REGISTRY.pop(key, None)
        _templates.templates.pop(key, None)


def registered_scopes() -> list[str]:
    """The names of every scope that has a config class."""
    return sorted(_REGISTRY)


def config_class_for(scope: str | HopperScope) -> type[InstanceConfig]:
    """The config class registered for ``scope``; an unknown scope is a validation error."""
    registration = _REGISTRY.get(_scope_key(scope))
    if registration is None:
        known = ", ".join(registered_scopes())
        raise ValidationError(
            "unknown scope", errors={"scope": [f"Unknown scope {scope!r}; known: {known}."]}
        )
    return registration.config_cls


# --- the operations the library uses ------------------------------------------------------


def scope_defaults(scope: str | HopperScope) -> Config:
    """A fresh copy of the scope's defaults: its validated template minus ``scope:``."""
    return config_class_for(scope).defaults()


def validate_config(scope: str | HopperScope, config: Any) -> Config:
    """Validate a complete config; raise ValidationError listing every bad field."""
    return config_class_for(scope).validate(config)


def validate_overrides(scope: str | HopperScope, given: Any) -> Config:
    """Validate a partial config (what a caller gave) and return it cleaned, Nones dropped.

    This is what the library stores: keeping only explicit keys is what lets
    ``effective_config`` tell a key the instance set from one it merely defaulted.
    """
    return config_class_for(scope).validate_overrides(given)


def full_config(scope: str | HopperScope, overrides: Mapping[str, Any] | None) -> Config:
    """The complete config of an instance: the scope's defaults with its overrides merged on."""
    return merge_config(scope_defaults(scope), overrides or {})


def full_config_json(scope: str | HopperScope, overrides: Mapping[str, Any] | None) -> str:
    """``json.dumps(full_config(scope, overrides))``, cached: a bulk import repeats the same
    few configs thousands of times. Reloading the templates starts a fresh cache."""
    overrides_json = json.dumps(overrides or {}, sort_keys=True)
    return _full_config_json(_scope_key(scope), overrides_json, id(_templates.templates))


@functools.lru_cache(maxsize=1024)
def _full_config_json(key: str, overrides_json: str, generation: int) -> str:
    return json.dumps(full_config(key, json.loads(overrides_json)))


def resolve_config(scope: str | HopperScope, given: Any) -> Config:
    """Merge ``given`` over the scope's defaults, validate and return the complete config."""
    return validate_config(scope, full_config(scope, validate_overrides(scope, given)))


def update_overrides(
    scope: str | HopperScope, stored: Mapping[str, Any] | None, patch: Any, *, replace: bool = False
) -> Config:
    """New overrides after a config update: ``patch`` merged over ``stored`` (PATCH), or, with
    ``replace``, ``patch`` alone (PUT). ``None`` in a patch unsets a key. Nothing is changed
    when it raises, since it returns a new dict."""
    checked = validate_overrides(scope, patch)  # errors named as in the patch itself
    if replace or not isinstance(patch, Mapping):
        return checked
    return validate_overrides(scope, merge_config(stored or {}, patch))


def merge_config(base: Mapping[str, Any], patch: Mapping[str, Any]) -> Config:
    """Deep-merge ``patch`` over ``base`` into a new dict; neither argument is changed.

    Maps merge key by key; any other value (lists included) replaces the old one whole; a
    ``None`` value deletes the key, so the value below it (default or inherited) applies.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            below = merged.get(key)
            merged[key] = merge_config(below if isinstance(below, Mapping) else {}, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def effective_config(
    chain: Sequence[tuple[str, Mapping[str, Any] | None]], scope: str | HopperScope
) -> tuple[Config, dict[str, str]]:
    """The config an instance runs with, and where each leaf key's value came from.

    ``chain`` is ``[(instance_id, overrides), ...]`` from the instance itself up to the root.
    A key the instance set comes from it; an unset ``INHERITABLE_KEYS`` key comes from the
    nearest ancestor that set it; anything else is the scope's default (``"default"``).
    """
    if not chain:
        raise ValueError("effective_config needs a chain starting with the instance itself")
    own_id, own = chain[0]
    config = full_config(scope, own)
    provenance: dict[str, str] = {}
    for key, _ in list(_leaves(config)):
        if _get_path(own or {}, key) is not _MISSING:
            provenance[key] = own_id
        elif _is_inheritable(key):
            provenance[key] = _inherit(config, key, chain[1:])
        else:
            provenance[key] = DEFAULT_PROVENANCE
    return config, provenance


def _inherit(config: Config, key: str, ancestors: Sequence[tuple[str, Any]]) -> str:
    """Copy ``key`` from the nearest ancestor that set it into ``config``; say who it was."""
    for ancestor_id, overrides in ancestors:
        value = _get_path(overrides or {}, key)
        if value is not _MISSING:
            _set_path(config, key, copy.deepcopy(value))
            return ancestor_id
    return DEFAULT_PROVENANCE


def _is_inheritable(key: str) -> bool:
    return any(key == root or key.startswith(root + ".") for root in INHERITABLE_KEYS)


def max_child_instances(config: Mapping[str, Any]) -> int:
    """How many children an instance with this full config may have."""
    return _limit(config, "max_child_instances")


def max_depth(config: Mapping[str, Any]) -> int:
    """How deep the tree may grow (root at depth 0); pass the GLOBAL instance's full config."""
    return _limit(config, "max_depth")


def _limit(config: Mapping[str, Any], name: str) -> int:
    value = config.get("limits", {}).get(name)
    if not isinstance(value, int):
        raise ValueError(f"config has no limits.{name}: pass a full config of the right scope")
    return value


# --- validation plumbing ------------------------------------------------------------------


def _load(
    schema: type[Schema], data: Any, *, partial: bool, errors: dict[str, list[str]] | None = None
) -> Config:
    """Run a marshmallow load; raise our ValidationError with its errors plus ``errors``."""
    if not isinstance(data, Mapping):
        raise ValidationError("invalid config", errors={_ERROR_ROOT: ["Not a mapping."]})
    found = dict(errors or {})
    loaded: Config = {}
    try:
        loaded = schema().load(data, partial=partial)
    except marshmallow.ValidationError as exc:
        extend_errors(found, flatten_errors(exc.messages, _ERROR_ROOT))
    if found:
        raise ValidationError("invalid config", errors=_with_hints(schema(), found))
    return loaded


def _with_hints(schema: Schema, errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """``errors`` with each unknown key's message naming the key it was near, if any: a
    misspelt ``limits.max_child_instance`` says which key was meant."""
    hinted = {}
    for path, messages in errors.items():
        parts = path.split(".")[1:]  # below "config"
        unknown = messages == [UNKNOWN_FIELD] and bool(parts)
        hinted[path] = [unknown_field(parts[-1], _keys_at(schema, parts[:-1]))] \
            if unknown else messages
    return hinted


def _keys_at(schema: Schema, parts: list[str]) -> list[str]:
    """The keys a nested schema takes at the dotted key ``parts`` (none past a free-form map)."""
    for part in parts:
        field = schema.fields.get(part)
        if not isinstance(field, fields.Nested):
            return []
        schema = field.schema
    return sorted(schema.fields)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _without_nones(data: Mapping[str, Any]) -> Config:
    """Drop ``None`` values (unset) from maps, at any depth; lists are kept as given."""
    return {
        key: _without_nones(value) if isinstance(value, Mapping) else value
        for key, value in data.items()
        if value is not None
    }


def _without_empty_maps(data: Mapping[str, Any]) -> Config:
    """Drop maps left empty, which add nothing to a merge, so stored overrides stay tidy."""
    cleaned: Config = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            value = _without_empty_maps(value)
        if value != {}:
            cleaned[key] = value
    return cleaned


def _null_paths(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The dotted key of every ``None`` value in ``data``."""
    for key, value in data.items():
        path = _join(prefix, str(key))
        if value is None:
            yield path
        elif isinstance(value, Mapping):
            yield from _null_paths(value, path)


def _knows(schema: Schema, parts: list[str]) -> bool:
    """Does ``schema`` have the dotted key ``parts`` (anything goes under a free-form Dict)?"""
    field = schema.fields.get(parts[0])
    if field is None:
        return False
    if len(parts) == 1 or isinstance(field, fields.Dict):
        return True
    return isinstance(field, fields.Nested) and _knows(field.schema, parts[1:])


def _leaves(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf as ``(dotted key, value)``; lists and empty maps are leaves."""
    for key, value in config.items():
        path = _join(prefix, str(key))
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, path)
        else:
            yield path, value


def _get_path(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _set_path(config: Config, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


# --- templates ----------------------------------------------------------------------------


class _TemplateCache:
    """The loaded, validated templates, per scope, and the override directory in force."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.templates: dict[str, Config] = {}
        self.config_dir: Path | None = None  # set by load_templates(config_dir)

    def get(self, key: str) -> Config:
        with self.lock:
            if key not in self.templates:
                self.templates[key] = _load_template(key, _REGISTRY[key], self.override_dir())
            return self.templates[key]

    def override_dir(self) -> Path | None:
        raw = self.config_dir or os.environ.get(CONFIG_DIR_ENV)
        if not raw:
            return None
        path = Path(raw)
        if not path.is_dir():
            raise TemplateError(
                path, f"config directory (from {CONFIG_DIR_ENV} or load_templates) does not exist"
            )
        return path


_templates = _TemplateCache()


def load_templates(config_dir: Path | str | None = None) -> None:
    """(Re)load and validate every registered scope's template; call it at start-up.

    ``config_dir`` (or, when None, ``$HOPPER_CONFIG_DIR``) layers over the packaged files.
    All templates are loaded before the cache is replaced: on error the old cache stays.
    """
    with _templates.lock:
        previous = _templates.config_dir
        _templates.config_dir = Path(config_dir) if config_dir is not None else None
        try:
            override = _templates.override_dir()
            loaded = {key: _load_template(key, reg, override) for key, reg in _REGISTRY.items()}
        except Exception:
            _templates.config_dir = previous
            raise
        _templates.templates = loaded


def _template_layers(registration: _Registration, override: Path | None) -> list[Path]:
    """The files to merge for one scope, lowest first: packaged, then the deployment's."""
    name = registration.config_cls.template_name
    packaged = registration.template or templates_dir() / name
    layers = [
        path
        for path in (packaged, override / name if override else None)
        if path is not None and path.is_file()
    ]
    if not layers:
        raise TemplateError(packaged, "template not found")
    return layers


def _load_template(key: str, registration: _Registration, override: Path | None) -> Config:
    """Merge a scope's template layers and validate the result as a complete config."""
    layers = _template_layers(registration, override)
    schema = registration.config_cls.schema
    merged: Config = {}
    for index, path in enumerate(layers):
        data = _read_template(path, key, scope_required=index == 0)
        _check_template(path, schema, data, partial=True)
        merged = merge_config(merged, data)
    # Each layer was checked above, so what is left is a key missing from the base file.
    return _check_template(layers[0], schema, merged, partial=False)


def _read_template(path: Path, key: str, *, scope_required: bool) -> Config:
    """Parse one YAML template, check its ``scope:`` line and return the rest."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(path, f"cannot read template: {exc}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise TemplateError(path, "a template must be a mapping of keys")
    stated = data.pop("scope", None)
    if (stated is not None or scope_required) and _scope_key(str(stated)) != key:
        raise TemplateError(path, "wrong scope", {"scope": [f"Must be {key!r}, found {stated!r}."]})
    return data


def _check_template(path: Path, schema: type[Schema], data: Config, *, partial: bool) -> Config:
    try:
        return _load(schema, data, partial=partial)
    except ValidationError as exc:
        errors = {key.removeprefix(f"{_ERROR_ROOT}."): msgs for key, msgs in exc.errors.items()}
        raise TemplateError(path, "invalid template", errors) from None
