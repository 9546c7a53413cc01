"""The hierarchy's rules, checked without a database: pure functions over specs and facts.

What can be checked from the input alone (names, scopes, types, config, metadata) is
checked by :func:`check_spec` before anything is read. What needs the parent (its scope,
status, depth, limit and children) is checked by :func:`check_parent` over facts the
repository read; the write itself checks again under the parent's lock what may have
changed since (``create_child_instance``), so the rules cannot be raced.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import orjson

from hopper_graph import config as scope_config
from hopper_graph import labels
from hopper_graph.enums import (
    ALLOWED_PARENT_SCOPES,
    DEFAULT_INSTANCE_TYPE,
    HopperScope,
    InstanceStatus,
    InstanceType,
)
from hopper_graph.errors import (
    DuplicateName,
    LimitExceeded,
    ParentArchived,
    RestoreInProgress,
    ScopeRuleViolation,
    ValidationError,
)
from hopper_graph.fields import DOCUMENT_FIELDS
from hopper_graph.models import InstanceSpec

ALL = 2**30
"""A limit that means no limit (Cypher takes no null there; list slices need 32 bits)."""
MAX_NAME_LENGTH = 255
MAX_TEXT_LENGTH = 255
"""project_id, actor and the other indexed or listed text fields: as long as a name."""
MAX_REASON_LENGTH = 2000
MAX_NESTING = 64
"""How deep config and metadata may nest: deeper input is refused, never recursed into."""
MAX_SEQ = 2**63 - 1
E = TypeVar("E", bound=Enum)


def with_article(word: str) -> str:
    """``word`` after its indefinite article, for messages: "an ORCHESTRATION", "a PROJECT"."""
    return ("an " if word[:1].upper() in "AEIOU" else "a ") + word


def one_of(values: Iterable[Any]) -> str:
    """The values a field takes, as text for a message: "one of: GLOBAL, PROJECT"."""
    return "one of: " + ", ".join(str(getattr(v, "value", v)) for v in values)


@dataclass(frozen=True, slots=True)
class CreatePlan:
    """A validated create: the properties to write, and what its write checks again."""

    props: dict[str, Any]
    parent_id: str | None
    parent_version: int | None = None
    limit: int | None = None
    top_project: bool = False
    global_version: int | None = None


def plan_create(spec: InstanceSpec, facts: dict[str, Any] | None) -> CreatePlan:
    """The create of a checked ``spec`` under the parent ``facts`` describe (the row of
    ``get_parent_for_create``), or the rule it breaks."""
    scope = HopperScope(spec.scope)
    if spec.parent_id is None:
        return CreatePlan(new_props(spec, None, 0), None)
    if facts is None:
        raise ScopeRuleViolation(f"parent {spec.parent_id} does not exist",
                                 errors={"parent_id": ["no instance with this id"]},
                                 parent_id=spec.parent_id)
    parent = facts["parent"]
    if facts.get("restoring"):
        raise RestoreInProgress(f"parent {parent['id']} is being restored; try again when "
                                "the import has finished", parent_id=parent["id"])
    global_config = facts.get("global_config")
    max_depth = scope_config.max_depth(json.loads(global_config)) \
        if global_config is not None else None
    limit = scope_config.max_child_instances(json.loads(parent["config"]))
    check_parent(spec, parent, facts["child_count"], facts["same_scope_sibling_types"],
                 max_depth, limit)
    project_id = spec.project_id if scope is HopperScope.PROJECT else parent["project_id"]
    return CreatePlan(new_props(spec, project_id, parent["depth"] + 1), parent["id"],
                      parent["version"], limit,
                      scope is HopperScope.PROJECT and parent["scope"] == "GLOBAL",
                      facts.get("global_version"))


# -- input ------------------------------------------------------------------------------
def scope_of(value: HopperScope | str) -> HopperScope:
    return _member(HopperScope, "scope", value)


def status_of(value: InstanceStatus | str) -> InstanceStatus:
    return _member(InstanceStatus, "status", value)


def _member(kind: type[E], field: str, value: object) -> E:
    """``kind(value)``, or a ValidationError on ``field`` listing the values it takes."""
    try:
        return kind(value)
    except ValueError:
        raise ValidationError(f"unknown {field} {value!r}", errors={field: [
            f"must be {one_of(kind)}"]}) from None


def check_page(offset: int, limit: int | None) -> None:
    errors = {}
    if not 0 <= offset <= ALL:
        errors["offset"] = [f"must be between 0 and {ALL}"]
    if limit is not None and not 1 <= limit <= ALL:
        errors["limit"] = [f"must be between 1 and {ALL}"]
    if errors:
        raise ValidationError("invalid pagination", errors=errors)


FIELDS = DOCUMENT_FIELDS
"""The fields of an instance a lean read may select (HopperInstance.to_dict's keys)."""


def check_fields(fields: Iterable[str]) -> tuple[str, ...]:
    """The fields a lean read selects, in the order given, each once; a ValidationError
    naming ``fields`` for one an instance does not have."""
    chosen = tuple(dict.fromkeys(fields))
    unknown = [f for f in chosen if f not in FIELDS]
    if unknown or not chosen:
        what = f"unknown field(s) {', '.join(unknown)}" if unknown else "no field"
        raise ValidationError(f"fields: {what}", errors={"fields": [
            f"{what}; choose among {', '.join(FIELDS)}"]})
    return chosen


Expected = int | Collection[int] | None
"""What a caller pins a write to: nothing, one version, or any of several (the versions an
If-Match list names)."""


def version_matches(version: int, expected: Expected) -> bool:
    """Whether an instance at ``version`` is one the caller pinned the write to."""
    if expected is None:
        return True
    if isinstance(expected, int):
        return version == expected
    return version in expected


def expected_value(expected: Expected) -> int | list[int] | None:
    """The pinned versions as an error reports them: one version, or the sorted list."""
    versions = expected_list(expected)
    return versions[0] if versions is not None and len(versions) == 1 else versions


def expected_list(expected: Expected) -> list[int] | None:
    """The pinned versions as a query parameter (null: any)."""
    if expected is None:
        return None
    return [expected] if isinstance(expected, int) else sorted(expected)


def check_text(field: str, value: str | None, max_length: int | None = None) -> None:
    """Strings stored as properties must be valid Unicode (no lone surrogates): the driver
    cannot encode them, and what cannot be stored is refused before anything is written.
    Indexed ones are bounded too: Neo4j refuses to index a value of some 8 kB."""
    if value is None:
        return
    if max_length is not None and len(value) > max_length:
        raise ValidationError(f"{field} is too long",
                              errors={field: [f"at most {max_length} characters"]})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} is not valid Unicode", errors={
            field: ["contains an unpaired surrogate"]}) from None


def check_nesting(field: str, value: Any, limit: int = MAX_NESTING) -> None:
    """Refuse maps and lists nested deeper than ``limit`` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                raise ValidationError(f"{field} is nested too deeply", errors={
                    field: [f"at most {limit} levels of nesting"]})
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def nfc(value: Any) -> Any:
    """Text in Unicode normalisation form C (composed: "café" one way, however it was
    typed); anything else as it is. Names and project ids are stored and looked up in it,
    so the uniqueness constraints see "café" composed and decomposed as one."""
    if isinstance(value, str):
        try:
            return unicodedata.normalize("NFC", value)
        except UnicodeEncodeError:  # lone surrogates: check_text refuses them
            return value
    return value


_VISIBLE = ("L", "N", "P", "S")
"""Unicode general categories that draw something on their own: letters, numbers,
punctuation, symbols. Spaces, controls, format characters (U+200B ZERO WIDTH SPACE) and
marks alone do not."""


def has_visible(text: str) -> bool:
    """Whether ``text`` has a character that shows: a name of only spaces or zero-width
    characters looks like no name at all."""
    return any(unicodedata.category(ch)[0] in _VISIBLE for ch in text)


def normal_name(name: object, field: str = "name") -> str:
    """``name`` in NFC, after checking it: a string with a visible character, at most
    MAX_NAME_LENGTH characters, valid Unicode. Errors name ``field``."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{field} must be a non-empty string",
                              errors={field: ["must be a non-empty string"]})
    check_text(field, name)
    if not has_visible(name):
        raise ValidationError(f"{field} has no visible character", errors={field: [
            "must have a visible character (not only spaces, zero-width or control "
            "characters)"]})
    normal = nfc(name)
    if len(normal) > MAX_NAME_LENGTH:
        raise ValidationError(f"{field} is too long",
                              errors={field: [f"at most {MAX_NAME_LENGTH} characters"]})
    return normal


def check_name(name: object) -> None:
    normal_name(name)


def check_metadata(metadata: object) -> None:
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be an object",
                              errors={"metadata": ["must be an object"]})
    check_nesting("metadata", metadata)
    try:
        text = json.dumps(metadata, allow_nan=False, sort_keys=True)
        exact = json.dumps(orjson.loads(text), sort_keys=True) == text
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError("metadata must be JSON-serialisable",
                              errors={"metadata": [str(exc)]}) from None
    if not exact:  # stored as JSON, it must read back the same
        raise ValidationError("metadata must round-trip through JSON exactly", errors={
            "metadata": ["only objects, arrays, strings, booleans, null, finite numbers and "
                         "integers within 64 bits"]})


def check_spec(spec: InstanceSpec) -> InstanceSpec:
    """Everything that can be checked without the graph; returns a normalised spec (name
    and project_id in NFC among the rest)."""
    name = normal_name(spec.name)
    scope = scope_of(spec.scope)
    errors: dict[str, list[str]] = {}
    instance_type = DEFAULT_INSTANCE_TYPE[scope]
    if spec.instance_type is not None:
        try:
            instance_type = InstanceType(spec.instance_type)
        except ValueError:
            errors["instance_type"] = [
                f"must be {one_of(InstanceType)}"]
    if scope is HopperScope.GLOBAL:
        if spec.parent_id is not None:
            errors["parent_id"] = ["a GLOBAL instance is always a root"]
        if spec.project_id is not None:
            errors["project_id"] = ["a GLOBAL instance has no project"]
        if instance_type is not InstanceType.SINGLETON:
            errors["instance_type"] = ["a GLOBAL instance is always SINGLETON"]
    elif spec.parent_id is None:
        errors["parent_id"] = [f"{with_article(scope.value)} instance needs a parent"]
    if scope is HopperScope.PROJECT and not (
            isinstance(spec.project_id, str) and spec.project_id.strip()):
        errors["project_id"] = ["required for a PROJECT instance"]
    project_id = nfc(spec.project_id)
    if project_id is not None:
        check_text("project_id", str(project_id), MAX_TEXT_LENGTH)
        if "project_id" not in errors and not has_visible(str(project_id)):
            errors["project_id"] = ["must have a visible character (not only spaces, "
                                    "zero-width or control characters)"]
    if errors:
        raise ScopeRuleViolation("the instance breaks a scope rule", errors=errors)
    if spec.metadata is not None:
        check_metadata(spec.metadata)
    if spec.labels is not None:
        labels.check_labels(spec.labels)
    check_nesting("config", spec.config)
    overrides = scope_config.validate_overrides(scope, spec.config)
    return InstanceSpec(name=name, scope=scope, parent_id=spec.parent_id,
                        project_id=project_id, instance_type=instance_type,
                        config=overrides, metadata=spec.metadata or {},
                        id=canonical_id(spec.id) if spec.id is not None else str(uuid.uuid4()),
                        labels=dict(sorted((spec.labels or {}).items())))


def canonical_id(value: object) -> str:
    """A caller's id in the one form the graph stores (lower case, dashed)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValidationError("id must be a UUID", errors={"id": ["must be a UUID"]}) from None


def check_parent(spec: InstanceSpec, parent: dict[str, Any], child_count: int,
                  sibling_types: Collection[str], max_depth: int | None,
                  limit: int | None = None) -> None:
    """The rules that need the (locked) parent: scope order, status, limits, SINGLETON.
    ``limit`` is the parent's ``limits.max_child_instances`` when the caller knows it."""
    scope = HopperScope(spec.scope)
    parent_scope = HopperScope(parent["scope"])
    if parent_scope not in ALLOWED_PARENT_SCOPES[scope]:
        raise ScopeRuleViolation(
            f"{with_article(scope.value)} instance cannot have "
            f"{with_article(parent_scope.value)} parent",
            errors={"parent_id": [
                f"parent is {parent_scope.value}; {with_article(scope.value)} needs "
                f"{one_of(sorted(s.value for s in ALLOWED_PARENT_SCOPES[scope]))}"]})
    if parent["status"] == InstanceStatus.ARCHIVED:
        raise ParentArchived(f"parent {parent['id']} is ARCHIVED: nothing may be created under it",
                             parent_id=parent["id"])
    if scope is HopperScope.ORCHESTRATION and spec.project_id not in (None,
                                                                    parent["project_id"]):
        raise ScopeRuleViolation("an ORCHESTRATION inherits its parent's project_id", errors={
            "project_id": [f"must be {parent['project_id']!r} (the parent's) or omitted"]})
    if max_depth is not None and parent["depth"] + 1 > max_depth:
        raise LimitExceeded(f"the hierarchy is limited to depth {max_depth}",
                            limit="limits.max_depth", value=max_depth)
    if limit is None:
        limit = scope_config.max_child_instances(json.loads(parent["config"]))
    check_parent_counts(spec, parent["id"], child_count, sibling_types, limit)


def check_parent_counts(spec: InstanceSpec, parent_id: str, child_count: int,
                        sibling_types: Collection[str], limit: int | None) -> None:
    """The rules on a parent's children: its limit (ARCHIVED children do not count) and
    SINGLETON."""
    if limit is not None and child_count >= limit:
        raise LimitExceeded(f"parent {parent_id} already has {child_count} children that are "
                            f"not ARCHIVED (limits.max_child_instances = {limit})",
                            limit="limits.max_child_instances", value=limit,
                            parent_id=parent_id)
    check_singleton(spec, sibling_types)


def check_singleton(spec: InstanceSpec, sibling_types: Collection[str]) -> None:
    if not sibling_types:
        return
    if (spec.instance_type == InstanceType.SINGLETON
            or InstanceType.SINGLETON.value in sibling_types):
        raise ScopeRuleViolation(
            f"a SINGLETON {HopperScope(spec.scope).value} instance cannot have a same-scope "
            "sibling", errors={"instance_type": ["SINGLETON forbids a same-scope sibling"]})


def check_unique_within(specs: Sequence[InstanceSpec]) -> None:
    seen: dict[tuple[str, str], int] = {}
    ids: set[str] = set()
    for index, spec in enumerate(specs):
        key = (spec.name, str(spec.scope))
        if key in seen:
            raise DuplicateName(f"{spec.name!r} ({spec.scope}) appears twice in the batch",
                                errors={f"[{index}].name": ["duplicate in this batch"]})
        seen[key] = index
        if spec.id in ids:
            raise ValidationError("duplicate id in the batch",
                                  errors={f"[{index}].id": ["duplicate in this batch"]})
        ids.add(spec.id)  # type: ignore[arg-type]


def new_props(spec: InstanceSpec, project_id: str | None, depth: int) -> dict[str, Any]:
    """The stored properties of a new instance; the create query adds the timestamps."""
    scope = HopperScope(spec.scope)
    overrides = spec.config or {}
    return {
        "id": spec.id, "name": spec.name, "scope": scope.value,
        "status": InstanceStatus.CREATED.value,
        "instance_type": InstanceType(spec.instance_type).value,  # type: ignore[arg-type]
        "parent_id": spec.parent_id, "project_id": project_id,
        "config": scope_config.full_config_json(scope, overrides),
        "config_set": json.dumps(overrides) if overrides else "{}",
        "metadata": json.dumps(spec.metadata) if spec.metadata else "{}",
        "labels": json.dumps(dict(sorted(spec.labels.items()))) if spec.labels else "{}",
        "version": 1, "depth": depth,
    }


def field_changes(current: dict[str, Any], name: str | None, config: dict[str, Any] | None,
             metadata: dict[str, Any] | None, replace: bool,
             new_labels: dict[str, str | None] | None = None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if name is not None:
        name = normal_name(name)
    if name is not None and name != current["name"]:
        changes["name"] = name
    if config is not None:
        check_nesting("config", config)
        scope = HopperScope(current["scope"])
        stored = json.loads(current.get("config_set") or "{}")
        overrides = scope_config.update_overrides(scope, stored, config, replace=replace)
        changes["config_set"] = json.dumps(overrides)
        changes["config"] = scope_config.full_config_json(scope, overrides)
    if metadata is not None:
        stored = json.loads(current.get("metadata") or "{}")
        merged = metadata if replace else scope_config.merge_config(stored, metadata)
        changes["metadata"] = json.dumps(merged)
    if new_labels is not None:
        labels.check_labels(new_labels, removals=True)
        stored = json.loads(current.get("labels") or "{}")
        after = labels.merged(stored, new_labels, replace)
        if len(after) > labels.MAX_LABELS:
            raise ValidationError(f"an instance carries at most {labels.MAX_LABELS} labels",
                                  errors={"labels": [f"at most {labels.MAX_LABELS} labels"]})
        if after != stored:
            changes["labels"] = json.dumps(after)
    return changes


def label_pairs(props: dict[str, Any]) -> list[str] | None:
    """The ``key=value`` pairs of the labels in stored properties (a create's props or an
    update's changes), from which the statements write the label edges; None when the
    properties do not set labels."""
    text = props.get("labels")
    return None if text is None else labels.pairs(json.loads(text))


class BulkPlanner:
    """Validates a bulk import against its existing parents (as ``bulk_lock_parents``
    returned them, locked) and against the batch itself."""

    def __init__(self, parent_records: Iterable[dict[str, Any]],
                 global_config: str | None) -> None:
        self.parents: dict[str, dict[str, Any]] = {}
        self.child_count: dict[str, int] = {}
        # per parent: the instance types of its children, by scope (the SINGLETON rule)
        self.children: dict[str, dict[str, set[str]]] = {}
        self.limits: dict[str, int] = {}  # per parent: limits.max_child_instances
        self.max_depth: int | None = None
        if global_config is not None:
            self.max_depth = scope_config.max_depth(json.loads(global_config))
        for record in parent_records:
            parent = record["parent"]
            if record.get("restoring"):
                raise RestoreInProgress(f"parent {parent['id']} is being restored",
                                        parent_id=parent["id"])
            self.parents[parent["id"]] = parent
            self.child_count[parent["id"]] = record["child_count"]
            by_scope: dict[str, set[str]] = {}
            for scope, kind in record["children"]:
                by_scope.setdefault(scope, set()).add(kind)
            self.children[parent["id"]] = by_scope

    @staticmethod
    def external_parents(specs: Sequence[InstanceSpec]) -> list[str]:
        """The parents the batch attaches to that are not in it: what to lock first."""
        batch_ids = {spec.id for spec in specs}
        return sorted({s.parent_id for s in specs
                       if s.parent_id is not None and s.parent_id not in batch_ids})

    def plan(self, specs: Sequence[InstanceSpec]) -> list[dict[str, Any]]:
        return [self._row(index, spec) for index, spec in enumerate(specs)]

    def _row(self, index: int, spec: InstanceSpec) -> dict[str, Any]:
        try:
            if spec.parent_id is None:
                props = new_props(spec, None, 0)
                self.max_depth = scope_config.max_depth(json.loads(props["config"]))
            else:
                props = self._child_props(spec)
        except (ValidationError, LimitExceeded, ParentArchived) as exc:
            exc.details["index"] = index
            if isinstance(exc, ValidationError):
                exc.errors = {f"[{index}].{k}": v for k, v in exc.errors.items()}
            raise
        self.parents[spec.id] = props  # type: ignore[index]
        self.child_count[spec.id] = 0  # type: ignore[index]
        self.children[spec.id] = {}  # type: ignore[index]
        # offset: microseconds after the import's time, so children keep the import order
        top_project = (props["scope"] == HopperScope.PROJECT.value
                       and self.parents.get(spec.parent_id or "", {}).get("scope")
                       == HopperScope.GLOBAL.value)
        return {"props": props, "parent_id": spec.parent_id, "offset": index,
                "top_project": top_project}

    def _child_props(self, spec: InstanceSpec) -> dict[str, Any]:
        parent = self.parents.get(spec.parent_id)  # type: ignore[arg-type]
        if parent is None:
            raise ScopeRuleViolation(f"parent {spec.parent_id} does not exist", errors={
                "parent_id": ["no instance with this id in the graph or earlier in the batch"]})
        pid = parent["id"]
        scope = HopperScope(spec.scope)
        kind = InstanceType(spec.instance_type).value  # type: ignore[arg-type]
        limit = self.limits.get(pid)
        if limit is None:
            limit = self.limits[pid] = scope_config.max_child_instances(
                json.loads(parent["config"]))
        siblings = self.children[pid].setdefault(scope.value, set())
        check_parent(spec, parent, self.child_count[pid], siblings, self.max_depth, limit)
        self.child_count[pid] += 1
        siblings.add(kind)
        project_id = spec.project_id if scope is HopperScope.PROJECT else parent["project_id"]
        return new_props(spec, project_id, parent["depth"] + 1)


# -- a lowered child limit (issue 24, item 4) ------------------------------------------------
def new_child_limit(changes: dict[str, Any]) -> int | None:
    """The limits.max_child_instances a field change writes (None without a config change):
    the update statement refuses it below the children the instance has."""
    if "config" not in changes:
        return None
    return scope_config.max_child_instances(json.loads(changes["config"]))


def check_lowered_limit(instance_id: str, child_count: int | None, limit: int | None) -> None:
    """LimitExceeded when an update would set limits.max_child_instances below the children
    (not ARCHIVED) the instance has: a limit is never lowered below what is there, so
    ``check`` and the API agree that children never exceed it."""
    if limit is not None and child_count is not None and child_count > limit:
        raise LimitExceeded(
            f"instance {instance_id} has {child_count} children that are not ARCHIVED; "
            f"limits.max_child_instances cannot go below that (to {limit}): archive or "
            "delete some first", errors={"config.limits.max_child_instances": [
                f"at least {child_count}: the children it has that are not ARCHIVED"]},
            limit="limits.max_child_instances", value=limit, child_count=child_count,
            id=instance_id)
