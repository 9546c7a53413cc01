"""Scope configuration: templates, defaults, merging, validation, registry, inheritance.

Pure Python, no database: effective_config takes the ancestor chain as a list.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import fields, validate

from hopper_graph import config
from hopper_graph.config import (
    DEFAULT_PROVENANCE,
    GlobalConfig,
    InstanceConfig,
    InstanceConfigSchema,
    OrchestrationConfig,
    ProjectConfig,
    config_class_for,
    effective_config,
    full_config,
    load_templates,
    max_child_instances,
    max_depth,
    merge_config,
    register_scope_config,
    resolve_config,
    scope_defaults,
    unregister_scope_config,
    update_overrides,
    validate_config,
    validate_overrides,
)
from hopper_graph.enums import HopperScope
from hopper_graph.errors import TemplateError, ValidationError
from hopper_graph.resources import templates_dir

BUILT_IN = [HopperScope.GLOBAL, HopperScope.PROJECT, HopperScope.ORCHESTRATION]


@pytest.fixture(autouse=True)
def packaged_templates(monkeypatch: pytest.MonkeyPatch):
    """Each test starts and ends on the packaged templates, whatever it overrides."""
    monkeypatch.delenv(config.CONFIG_DIR_ENV, raising=False)
    load_templates()
    yield
    monkeypatch.delenv(config.CONFIG_DIR_ENV, raising=False)
    unregister_scope_config("WORKER")
    load_templates()


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def errors_of(scope: str, given: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        resolve_config(scope, given)
    assert info.value.message == "invalid config"
    return info.value.errors


# --- templates and defaults ---------------------------------------------------------------


@pytest.mark.parametrize("scope", BUILT_IN)
def test_every_template_loads_validates_and_states_its_scope(scope: HopperScope) -> None:
    cls = config_class_for(scope)
    path = templates_dir() / cls.template_name
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert raw.pop("scope") == scope
    assert validate_config(scope, raw) == scope_defaults(scope)


def test_config_classes_are_registered_per_scope() -> None:
    assert config_class_for(HopperScope.GLOBAL) is GlobalConfig
    assert config_class_for("PROJECT") is ProjectConfig
    assert config_class_for("orchestration") is OrchestrationConfig
    assert config.registered_scopes() == ["GLOBAL", "ORCHESTRATION", "PROJECT"]


def test_unknown_scope_is_a_validation_error_naming_scope() -> None:
    with pytest.raises(ValidationError) as info:
        config_class_for("PERSONAL")
    assert list(info.value.errors) == ["scope"]


def test_global_defaults() -> None:
    assert scope_defaults(HopperScope.GLOBAL) == {
        "routing": {"strategy": "intelligent", "fallback": "rules"},
        "delegation": {"enabled": True, "auto_create_project_instances": True},
        "limits": {"max_child_instances": 100, "max_depth": 64},
        "health": {"heartbeat_timeout_seconds": 120},
        "tags": [],
    }


def test_project_defaults() -> None:
    assert scope_defaults(HopperScope.PROJECT) == {
        "delegation": {
            "auto_delegate": True,
            "orchestration_threshold": 3,
            "auto_create_orchestrations": True,
        },
        "capabilities": [],
        "tags": [],
        "limits": {"max_child_instances": 50},
        "health": {"heartbeat_timeout_seconds": 120},
    }


def test_orchestration_defaults() -> None:
    assert scope_defaults(HopperScope.ORCHESTRATION) == {
        "execution": {
            "max_concurrent_tasks": 4,
            "retry_on_failure": True,
            "max_retries": 3,
            "worker_timeout_seconds": 3600,
        },
        "retention": {"purge_archived": True, "archived_ttl_seconds": 604800},
        "limits": {"max_child_instances": 20},
        "health": {"heartbeat_timeout_seconds": 60},
        "tags": [],
    }


def test_defaults_are_a_fresh_copy_each_time() -> None:
    defaults = scope_defaults("GLOBAL")
    defaults["routing"]["strategy"] = "manual"
    defaults["tags"].append("changed")
    assert scope_defaults("GLOBAL")["routing"]["strategy"] == "intelligent"
    assert scope_defaults("GLOBAL")["tags"] == []


def test_limit_helpers_read_full_configs() -> None:
    assert max_child_instances(scope_defaults("GLOBAL")) == 100
    assert max_depth(scope_defaults("GLOBAL")) == 64
    assert (
        max_child_instances(resolve_config("PROJECT", {"limits": {"max_child_instances": 7}})) == 7
    )
    with pytest.raises(ValueError, match=r"limits\.max_depth"):
        max_depth(scope_defaults("PROJECT"))


# --- merge semantics ----------------------------------------------------------------------


def test_merge_nested_maps_merge_key_by_key() -> None:
    base = {"routing": {"strategy": "intelligent", "fallback": "rules"}, "tags": ["a"]}
    merged = merge_config(base, {"routing": {"strategy": "manual"}})
    assert merged == {"routing": {"strategy": "manual", "fallback": "rules"}, "tags": ["a"]}


def test_merge_lists_replace_whole() -> None:
    assert merge_config({"tags": ["a", "b"]}, {"tags": ["c"]}) == {"tags": ["c"]}
    assert merge_config({"tags": ["a"]}, {"tags": []}) == {"tags": []}


def test_merge_none_deletes_the_key() -> None:
    base = {"routing": {"strategy": "manual", "fallback": "none"}, "tags": ["a"]}
    assert merge_config(base, {"routing": {"fallback": None}, "tags": None}) == {
        "routing": {"strategy": "manual"}
    }


def test_merge_into_a_missing_or_scalar_key_builds_a_map_without_nones() -> None:
    assert merge_config({}, {"a": {"b": 1, "c": None}}) == {"a": {"b": 1}}
    assert merge_config({"a": 5}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_merge_changes_neither_argument() -> None:
    base = {"routing": {"strategy": "rules"}, "tags": ["a"]}
    patch = {"routing": {"strategy": "manual"}, "tags": ["b"]}
    before = copy.deepcopy((base, patch))
    merged = merge_config(base, patch)
    merged["tags"].append("x")
    assert (base, patch) == before


maps = st.recursive(
    st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=3)),
    lambda children: st.dictionaries(st.sampled_from("abcd"), children, max_size=4),
    max_leaves=10,
).filter(lambda value: isinstance(value, dict))


@given(maps, maps)
def test_merge_every_patch_leaf_wins_and_untouched_keys_stay(base: dict, patch: dict) -> None:
    merged = merge_config(base, patch)
    assert merge_config(merged, {}) == merged
    for key, value in config._leaves(patch):
        if value != {}:
            assert config._get_path(merged, key) == value
    for key in base.keys() - patch.keys():
        assert merged[key] == base[key]


def test_resolve_merges_over_defaults() -> None:
    resolved = resolve_config("GLOBAL", {"routing": {"strategy": "round_robin"}, "tags": ["prod"]})
    assert resolved["routing"] == {"strategy": "round_robin", "fallback": "rules"}
    assert resolved["tags"] == ["prod"]
    assert resolved["limits"] == {"max_child_instances": 100, "max_depth": 64}


def test_resolve_with_null_takes_the_default() -> None:
    resolved = resolve_config(
        "ORCHESTRATION", {"execution": {"max_retries": None}, "retention": None}
    )
    assert resolved == scope_defaults("ORCHESTRATION")


def test_resolve_with_nothing_given_is_the_defaults() -> None:
    assert resolve_config("PROJECT", None) == scope_defaults("PROJECT")
    assert resolve_config("PROJECT", {}) == scope_defaults("PROJECT")


# --- overrides: what the library stores ---------------------------------------------------


def test_validate_overrides_keeps_only_what_was_given() -> None:
    given = {
        "delegation": {"orchestration_threshold": 5, "auto_delegate": None},
        "capabilities": ["python"],
        "tags": None,
    }
    assert validate_overrides("PROJECT", given) == {
        "delegation": {"orchestration_threshold": 5},
        "capabilities": ["python"],
    }
    assert validate_overrides("PROJECT", {"delegation": {"auto_delegate": None}}) == {}
    assert validate_overrides("PROJECT", None) == {}


def test_full_config_is_defaults_plus_overrides() -> None:
    overrides = validate_overrides("PROJECT", {"delegation": {"auto_delegate": False}})
    full = full_config("PROJECT", overrides)
    assert full["delegation"] == {
        "auto_delegate": False,
        "orchestration_threshold": 3,
        "auto_create_orchestrations": True,
    }
    assert validate_config("PROJECT", full) == full


def test_update_overrides_patch_merges_and_null_unsets() -> None:
    stored = {"execution": {"max_retries": 5, "max_concurrent_tasks": 2}, "tags": ["a"]}
    patch = {"execution": {"max_retries": None, "retry_on_failure": False}, "tags": ["b"]}
    assert update_overrides("ORCHESTRATION", stored, patch) == {
        "execution": {"max_concurrent_tasks": 2, "retry_on_failure": False},
        "tags": ["b"],
    }


def test_update_overrides_replace_drops_what_is_not_given() -> None:
    stored = {"execution": {"max_retries": 5}, "tags": ["a"]}
    assert update_overrides("ORCHESTRATION", stored, {"tags": ["b"]}, replace=True) == {
        "tags": ["b"]
    }


def test_update_overrides_rejects_a_bad_patch_and_leaves_stored_alone() -> None:
    stored = {"execution": {"max_retries": 5}}
    with pytest.raises(ValidationError) as info:
        update_overrides("ORCHESTRATION", stored, {"execution": {"max_retries": -1, "typo": None}})
    assert set(info.value.errors) == {"config.execution.max_retries", "config.execution.typo"}
    assert stored == {"execution": {"max_retries": 5}}


# --- invalid values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "given", "path"),
    [
        # unknown keys, at the top, nested, and spelled with a null value
        ("GLOBAL", {"colour": "red"}, "config.colour"),
        ("GLOBAL", {"routing": {"stratgey": "rules"}}, "config.routing.stratgey"),
        ("PROJECT", {"routing": {"strategy": "rules"}}, "config.routing"),
        ("PROJECT", {"scope": "PROJECT"}, "config.scope"),
        ("PROJECT", {"delegation": {"auto_delgate": None}}, "config.delegation.auto_delgate"),
        ("ORCHESTRATION", {"limits": {"max_depth": 3}}, "config.limits.max_depth"),
        # wrong types
        ("GLOBAL", {"limits": {"max_child_instances": "100"}}, "config.limits.max_child_instances"),
        ("GLOBAL", {"limits": {"max_child_instances": 2.5}}, "config.limits.max_child_instances"),
        ("GLOBAL", {"limits": {"max_depth": True}}, "config.limits.max_depth"),
        ("GLOBAL", {"delegation": {"enabled": "yes"}}, "config.delegation.enabled"),
        ("GLOBAL", {"delegation": {"enabled": 1}}, "config.delegation.enabled"),
        ("GLOBAL", {"routing": "rules"}, "config.routing"),
        ("GLOBAL", {"routing": {"strategy": 3}}, "config.routing.strategy"),
        ("PROJECT", {"tags": "web"}, "config.tags"),
        ("PROJECT", {"capabilities": ["python", 3]}, "config.capabilities.1"),
        ("PROJECT", {"capabilities": [""]}, "config.capabilities.0"),
        (
            "ORCHESTRATION",
            {"execution": {"retry_on_failure": "false"}},
            "config.execution.retry_on_failure",
        ),
        # out of range
        ("GLOBAL", {"limits": {"max_child_instances": 0}}, "config.limits.max_child_instances"),
        ("GLOBAL", {"limits": {"max_depth": -1}}, "config.limits.max_depth"),
        (
            "PROJECT",
            {"delegation": {"orchestration_threshold": 6}},
            "config.delegation.orchestration_threshold",
        ),
        (
            "PROJECT",
            {"health": {"heartbeat_timeout_seconds": 0}},
            "config.health.heartbeat_timeout_seconds",
        ),
        ("ORCHESTRATION", {"execution": {"max_retries": -1}}, "config.execution.max_retries"),
        (
            "ORCHESTRATION",
            {"retention": {"archived_ttl_seconds": -5}},
            "config.retention.archived_ttl_seconds",
        ),
        # a choice outside its closed set
        ("GLOBAL", {"routing": {"strategy": "random"}}, "config.routing.strategy"),
        ("GLOBAL", {"routing": {"fallback": "intelligence"}}, "config.routing.fallback"),
    ],
)
def test_invalid_value_is_rejected_with_its_dotted_path(scope: str, given: dict, path: str) -> None:
    errors = errors_of(scope, given)
    assert list(errors) == [path]
    assert errors[path] and all(isinstance(msg, str) for msg in errors[path])


def test_a_config_that_is_not_a_mapping_is_rejected() -> None:
    assert errors_of("GLOBAL", ["routing"]) == {"config": ["Not a mapping."]}


def test_every_bad_field_is_listed_at_once() -> None:
    errors = errors_of(
        "GLOBAL",
        {
            "routing": {"strategy": "random", "extra": 1},
            "delegation": {"enabled": "no"},
            "limits": {"max_child_instances": 0, "max_depth": "deep"},
            "tags": [1],
            "unknown": None,
        },
    )
    assert set(errors) == {
        "config.routing.strategy",
        "config.routing.extra",
        "config.delegation.enabled",
        "config.limits.max_child_instances",
        "config.limits.max_depth",
        "config.tags.0",
        "config.unknown",
    }
    assert errors["config.routing.strategy"] == [
        "Must be one of: intelligent, rules, round_robin, manual."
    ]


def test_validate_config_requires_every_key() -> None:
    incomplete = scope_defaults("PROJECT")
    del incomplete["delegation"]["auto_delegate"]
    del incomplete["tags"]
    with pytest.raises(ValidationError) as info:
        validate_config("PROJECT", incomplete)
    assert set(info.value.errors) == {"config.delegation.auto_delegate", "config.tags"}


# --- template overrides and broken templates ----------------------------------------------


def test_config_dir_from_environment_layers_over_packaged_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_yaml(
        tmp_path / "global-instance.yaml",
        {"scope": "GLOBAL", "routing": {"strategy": "rules"}, "tags": ["site-a"]},
    )
    monkeypatch.setenv(config.CONFIG_DIR_ENV, str(tmp_path))
    load_templates()
    defaults = scope_defaults("GLOBAL")
    assert defaults["routing"] == {"strategy": "rules", "fallback": "rules"}
    assert defaults["tags"] == ["site-a"]
    assert scope_defaults("PROJECT")["limits"] == {"max_child_instances": 50}


def test_config_dir_argument_wins_and_reload_goes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_yaml(tmp_path / "project-instance.yaml", {"limits": {"max_child_instances": 9}})
    load_templates(tmp_path)
    assert scope_defaults("PROJECT")["limits"]["max_child_instances"] == 9
    assert resolve_config("PROJECT", {})["limits"]["max_child_instances"] == 9
    load_templates()
    assert scope_defaults("PROJECT")["limits"]["max_child_instances"] == 50


def test_missing_config_dir_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.CONFIG_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(TemplateError, match="nowhere"):
        load_templates()


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ({"routing": {"strategy": "random"}}, "routing.strategy"),
        ({"limits": {"max_child_instances": 0}}, "limits.max_child_instances"),
        ({"routing": {"fallback": None}}, "routing.fallback"),
        ({"delegation": {"enabeld": True}}, "delegation.enabeld"),
        ({"scope": "PROJECT"}, "scope"),
    ],
)
def test_broken_template_fails_naming_file_and_key(tmp_path: Path, content: dict, key: str) -> None:
    path = write_yaml(tmp_path / "global-instance.yaml", content)
    with pytest.raises(ValueError, match=key.replace(".", r"\.")) as info:
        load_templates(tmp_path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, TemplateError) and key in info.value.errors


@pytest.mark.parametrize("text", ["routing: [unclosed\n", "- just\n- a list\n"])
def test_unreadable_template_fails_naming_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "orchestration-instance.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=str(path)):
        load_templates(tmp_path)


def test_a_failed_reload_keeps_the_templates_in_use(tmp_path: Path) -> None:
    write_yaml(tmp_path / "global-instance.yaml", {"limits": {"max_depth": 0}})
    with pytest.raises(TemplateError):
        load_templates(tmp_path)
    assert max_depth(scope_defaults("GLOBAL")) == 64


def test_packaged_template_must_state_its_scope(tmp_path: Path) -> None:
    class Nameless(InstanceConfig):
        scope = "WORKER"
        schema = InstanceConfigSchema
        template_name = "worker-instance.yaml"

    path = write_yaml(tmp_path / "worker-instance.yaml", {"tags": []})
    with pytest.raises(TemplateError, match="scope"):
        register_scope_config("WORKER", Nameless, path)
    with pytest.raises(ValidationError):
        config_class_for("WORKER")


# --- registry: a scope that does not exist yet --------------------------------------------


class WorkerSchema(InstanceConfigSchema):
    queue = fields.String(required=True)
    concurrency = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=32))


class WorkerConfig(InstanceConfig):
    scope: ClassVar[str] = "WORKER"
    schema = WorkerSchema
    template_name = "worker-instance.yaml"


WORKER_TEMPLATE = {
    "scope": "WORKER",
    "queue": "default",
    "concurrency": 2,
    "tags": [],
    "health": {"heartbeat_timeout_seconds": 30},
    "limits": {"max_child_instances": 1},
}


def test_register_a_new_scope_with_its_own_template(tmp_path: Path) -> None:
    template = write_yaml(tmp_path / "worker-instance.yaml", WORKER_TEMPLATE)
    register_scope_config("WORKER", WorkerConfig, template)
    assert config_class_for("WORKER") is WorkerConfig
    assert "WORKER" in config.registered_scopes()
    assert scope_defaults("WORKER")["queue"] == "default"
    assert resolve_config("WORKER", {"concurrency": 8})["concurrency"] == 8
    assert set(errors_of("WORKER", {"concurrency": 64, "routing": {}})) == {
        "config.concurrency",
        "config.routing",
    }
    load_templates()  # a reload keeps registered scopes
    assert scope_defaults("WORKER")["concurrency"] == 2


def test_registered_scope_template_is_validated_and_overridable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packaged = tmp_path / "packaged"
    deployed = tmp_path / "deployed"
    packaged.mkdir()
    deployed.mkdir()
    template = write_yaml(packaged / "worker-instance.yaml", WORKER_TEMPLATE)
    write_yaml(deployed / "worker-instance.yaml", {"queue": "fast"})
    monkeypatch.setenv(config.CONFIG_DIR_ENV, str(deployed))
    register_scope_config("worker", WorkerConfig, str(template))
    assert scope_defaults("WORKER")["queue"] == "fast"
    write_yaml(deployed / "worker-instance.yaml", {"concurrency": 0})
    with pytest.raises(TemplateError, match="concurrency"):
        load_templates()


def test_register_checks_the_class_matches_the_scope(tmp_path: Path) -> None:
    template = write_yaml(tmp_path / "worker-instance.yaml", WORKER_TEMPLATE)
    with pytest.raises(ValueError, match="scope"):
        register_scope_config("RUNNER", WorkerConfig, template)
    with pytest.raises(TypeError):
        register_scope_config("WORKER", dict, template)  # type: ignore[arg-type]


# --- effective configuration with provenance ----------------------------------------------

GLOBAL_ID, PROJECT_ID, SUB_ID, RUN_ID = "g-1", "p-1", "p-2", "o-1"


def chain_for_run() -> list[tuple[str, dict]]:
    """GLOBAL -> PROJECT -> sub-PROJECT -> ORCHESTRATION, as stored overrides, nearest first."""
    return [
        (RUN_ID, {"execution": {"max_retries": 5}}),
        (SUB_ID, {"capabilities": ["sql"], "limits": {"max_child_instances": 3}}),
        (PROJECT_ID, {"tags": ["web"], "delegation": {"auto_delegate": False}}),
        (
            GLOBAL_ID,
            {
                "health": {"heartbeat_timeout_seconds": 300},
                "tags": ["prod"],
                "limits": {"max_depth": 10},
            },
        ),
    ]


def test_effective_config_of_a_run_inherits_and_says_from_where() -> None:
    effective, provenance = effective_config(chain_for_run(), HopperScope.ORCHESTRATION)
    assert effective["health"] == {"heartbeat_timeout_seconds": 300}
    assert effective["tags"] == ["web"]
    assert effective["execution"]["max_retries"] == 5
    assert effective["limits"] == {"max_child_instances": 20}
    assert provenance == {
        "health.heartbeat_timeout_seconds": GLOBAL_ID,
        "tags": PROJECT_ID,
        "limits.max_child_instances": DEFAULT_PROVENANCE,
        "execution.max_concurrent_tasks": DEFAULT_PROVENANCE,
        "execution.retry_on_failure": DEFAULT_PROVENANCE,
        "execution.max_retries": RUN_ID,
        "execution.worker_timeout_seconds": DEFAULT_PROVENANCE,
        "retention.purge_archived": DEFAULT_PROVENANCE,
        "retention.archived_ttl_seconds": DEFAULT_PROVENANCE,
    }
    assert validate_config("ORCHESTRATION", effective) == effective


def test_effective_config_of_a_sub_project() -> None:
    effective, provenance = effective_config(chain_for_run()[1:], "PROJECT")
    assert effective["capabilities"] == ["sql"] and provenance["capabilities"] == SUB_ID
    assert effective["tags"] == ["web"] and provenance["tags"] == PROJECT_ID
    assert effective["delegation"]["auto_delegate"] is True  # not inheritable
    assert provenance["delegation.auto_delegate"] == DEFAULT_PROVENANCE
    assert provenance["limits.max_child_instances"] == SUB_ID


def test_an_instance_setting_a_key_beats_its_ancestors() -> None:
    chain = chain_for_run()
    chain[0] = (RUN_ID, {"tags": [], "health": {"heartbeat_timeout_seconds": 15}})
    effective, provenance = effective_config(chain, "ORCHESTRATION")
    assert effective["tags"] == [] and provenance["tags"] == RUN_ID
    assert provenance["health.heartbeat_timeout_seconds"] == RUN_ID


def test_effective_config_of_the_root_is_its_full_config() -> None:
    overrides = chain_for_run()[-1][1]
    effective, provenance = effective_config([(GLOBAL_ID, overrides)], "GLOBAL")
    assert effective == full_config("GLOBAL", overrides)
    assert provenance["limits.max_depth"] == GLOBAL_ID
    assert provenance["routing.strategy"] == DEFAULT_PROVENANCE


def test_nothing_set_anywhere_is_all_defaults() -> None:
    chain: list[tuple[str, dict | None]] = [(RUN_ID, {}), (PROJECT_ID, None), (GLOBAL_ID, {})]
    effective, provenance = effective_config(chain, "ORCHESTRATION")
    assert effective == scope_defaults("ORCHESTRATION")
    assert set(provenance.values()) == {DEFAULT_PROVENANCE}


def test_effective_config_leaves_the_chain_untouched() -> None:
    chain = chain_for_run()
    before = copy.deepcopy(chain)
    effective, _ = effective_config(chain, "ORCHESTRATION")
    effective["tags"].append("x")
    assert chain == before


def test_effective_config_needs_the_instance() -> None:
    with pytest.raises(ValueError):
        effective_config([], "PROJECT")


def test_effective_config_is_fast_on_a_deep_chain() -> None:
    chain: list[tuple[str, dict]] = [(f"o-{i}", {}) for i in range(20_000)]
    chain.append((GLOBAL_ID, {"tags": ["deep"]}))
    started = time.perf_counter()
    effective, provenance = effective_config(chain, "ORCHESTRATION")
    assert time.perf_counter() - started < 2
    assert effective["tags"] == ["deep"] and provenance["tags"] == GLOBAL_ID


def test_a_misspelt_config_key_is_refused_naming_the_key_it_was_near() -> None:
    """An unknown key at any depth names the nearest key of that level; one near nothing,
    or under a free-form map, stays a plain "Unknown field."."""
    from hopper_graph.config import ProjectConfig

    with pytest.raises(ValidationError) as caught:
        ProjectConfig.validate_overrides({"limits": {"max_child_instance": 3},
                                          "zzzz": 1})
    assert caught.value.errors == {
        "config.limits.max_child_instance": ["Unknown field. Did you mean "
                                             "'max_child_instances'?"],
        "config.zzzz": ["Unknown field."]}
    with pytest.raises(ValidationError) as caught:  # None means unset, but the key is checked
        ProjectConfig.validate_overrides({"limits": {"max_child_instance": None}})
    assert caught.value.errors["config.limits.max_child_instance"][0].endswith(
        "Did you mean 'max_child_instances'?")
