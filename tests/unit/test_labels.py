"""Labels and selectors, the pure parts (hopper_graph/labels.py)."""

from __future__ import annotations

import json

import pytest

from hopper_graph.errors import InvalidSelector, ValidationError
from hopper_graph.labels import (
    Requirement,
    changed_keys,
    check_labels,
    merged,
    pairs,
    parse_selector,
)


@pytest.mark.parametrize("labels", [
    {}, {"team": "infra"}, {"a": ""}, {"example.com/tier": "batch"},
    {"x" * 63: "y" * 63}, {"a.b_c-d": "A.b_c-9"}, {"k8s.io/app": "web"},
])
def test_valid_labels_pass(labels: dict[str, str]) -> None:
    check_labels(labels)


@pytest.mark.parametrize("key, value", [
    ("", "v"), ("-team", "v"), ("team-", "v"), ("x" * 64, "v"), ("te am", "v"),
    ("/team", "v"), ("Example.com/team", "v"), ("a/b/c", "v"), ("team", "-v"),
    ("team", "v" * 64), ("team", "a b"), ("team", 3), ("team", None),
])
def test_invalid_labels_are_refused_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        check_labels({key: value})
    assert f"labels.{key}" in caught.value.errors


def test_a_patch_may_remove_with_null() -> None:
    check_labels({"team": None}, removals=True)
    assert merged({"a": "1", "b": "2"}, {"a": None, "c": "3"}) == {"b": "2", "c": "3"}
    assert merged({"a": "1"}, {"c": "3"}, replace=True) == {"c": "3"}


def test_pairs_and_changed_keys() -> None:
    assert pairs({"b": "", "a": "x"}) == ["a=x", "b="]
    assert changed_keys({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": ""}) == ["b", "c"]


def test_every_operator_parses() -> None:
    selector = parse_selector(
        "team=infra, tier!=batch,env in (prod, staging),!legacy,canary,x==y,z notin (a,b)")
    assert selector.requirements == (
        Requirement("team", "in", ("infra",)), Requirement("tier", "notin", ("batch",)),
        Requirement("env", "in", ("prod", "staging")), Requirement("legacy", "!exists"),
        Requirement("canary", "exists"), Requirement("x", "in", ("y",)),
        Requirement("z", "notin", ("a", "b")))


def test_empty_values_and_empty_selector() -> None:
    assert parse_selector("a=").requirements == (Requirement("a", "in", ("",)),)
    assert parse_selector("a in (,b)").requirements == (Requirement("a", "in", ("", "b")),)
    assert not parse_selector("  ")


@pytest.mark.parametrize("text, labels, expected", [
    ("team=infra", {"team": "infra"}, True),
    ("team=infra", {"team": "web"}, False),
    ("team!=infra", {}, True),
    ("team!=infra", {"team": "infra"}, False),
    ("env in (a,b)", {"env": "b"}, True),
    ("env notin (a,b)", {"env": "b"}, False),
    ("env notin (a,b)", {}, True),
    ("legacy", {"legacy": ""}, True),
    ("!legacy", {"legacy": ""}, False),
    ("team=infra,!legacy", {"team": "infra"}, True),
    ("team=infra,!legacy", {"team": "infra", "legacy": "y"}, False),
])
def test_matches_follows_kubernetes(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


@pytest.mark.parametrize("text, position", [
    ("team=infra,", 12),        # ends after a comma
    ("team in prod", 9),        # no parenthesis
    ("team in (a b)", 12),      # no comma between values
    ("team=in+fra", 8),         # a character no token holds
    ("=infra", 1),              # no key
    ("team infra", 6),          # no operator
    ("-team=x", 1),             # not a key
    ("team=-x", 6),             # not a value
    ("a=b,,c", 5),              # an empty requirement
    ("env in (a,b", 12),        # unclosed
    ("!", 2),                   # no key after !
])
def test_malformed_selectors_name_the_position(text: str, position: int) -> None:
    with pytest.raises(InvalidSelector) as caught:
        parse_selector(text)
    assert caught.value.details["position"] == position
    assert f"position {position}" in caught.value.message


def test_the_seek_requirement_is_a_positive_one_with_fewest_values() -> None:
    assert parse_selector("!a,b in (1,2),c=3").seek == Requirement("c", "in", ("3",))
    assert parse_selector("!a,b!=2,c").seek is None


def test_params_are_plain_data() -> None:
    assert parse_selector("a in (1,2),!b").params() == [
        {"key": "a", "op": "in", "pairs": ["a=1", "a=2"]},
        {"key": "b", "op": "!exists", "pairs": []}]


def test_a_patch_may_not_take_an_instance_past_the_most_labels() -> None:
    from hopper_graph import rules
    from hopper_graph.labels import MAX_LABELS

    stored = {"labels": json.dumps({f"k{i}": "v" for i in range(MAX_LABELS)})}
    with pytest.raises(ValidationError) as caught:
        rules.field_changes(stored, None, None, None, False, {"one-more": "v"})
    assert caught.value.errors == {"labels": [f"at most {MAX_LABELS} labels"]}
    assert rules.field_changes(stored, None, None, None, False, {"k0": None, "new": "v"})
