"""Apply a document that describes a hierarchy: create what is missing, bring what differs
in line, and leave everything else alone.

The document (YAML or JSON) lists instances, each with its children nested below it::

    instances:
      - name: global
        scope: GLOBAL
        children:
          - name: website
            scope: PROJECT
            project_id: website
            status: ACTIVE              # optional: where its lifecycle should be
            config: {limits: {max_child_instances: 20}}
            metadata: {owner: web-team}
            labels: {team: web, tier: frontend}
            children:
              - {name: website-build, scope: ORCHESTRATION}
      - name: billing                   # a top-level entry names its parent: an instance
        scope: PROJECT                  # of the graph or of this document (id or
        parent: GLOBAL:global           # SCOPE:NAME), so deep chains can be written flat
        project_id: billing

Instances are matched by scope and name (unique together), parents first. A missing one
is created (then moved to its ``status``, if one is given, by the one lifecycle event that
leads there). An existing one is compared with its entry: config, metadata, labels and
status that differ are changed in one audited write pinned to the version compared (config,
metadata and labels merge into what is stored, as a PATCH does, unless ``replace``); if nothing
differs it is left untouched. Nothing the document does not name is deleted or changed. An
instance found under another parent, or with another project_id or type, is a conflict:
apply never moves instances.

A bad document changes nothing: the whole of it is checked first (its shape with
marshmallow, then every rule that needs no graph), and every instance it names is read and
compared before the first write. Errors name the place in the document, as
``instances[0].children[2].scope``.

Two applies may race: a create that loses (the name, GLOBAL and project_id constraints
refuse it) reads the winner's instance and compares it like any existing one, and an
update pinned to a version that moved is compared again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as SchemaError

from hopper_graph import rules
from hopper_graph.enums import (
    ALLOWED_PARENT_SCOPES,
    HopperScope,
    InstanceStatus,
    InstanceType,
)
from hopper_graph.errors import (
    ConcurrentModification,
    Conflict,
    HopperGraphError,
    NotFound,
    ScopeRuleViolation,
    ValidationError,
)
from hopper_graph.labels import check_labels
from hopper_graph.machine import event_to
from hopper_graph.manager import InstanceManager
from hopper_graph.models import HopperInstance, InstanceSpec
from hopper_graph.validation import flatten_errors

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
MAX_DOCUMENT_NESTING = 200
"""How deep a document may nest (each level of children takes two, config and metadata
count too): loading recurses, and a deep chain is better written flat with ``parent``."""
_ATTEMPTS = 5
_READ_BATCH = 1000
_PLACEHOLDER_PARENT = "00000000-0000-0000-0000-000000000000"
_ENTRY_FIELD = {"parent_id": "parent", "instance_type": "type"}
"""The library's field names as a document spells them."""

Progress = Callable[["AppliedInstance", int, int], None]
"""Called after each instance with what was done to it, how many are done and the total."""


# -- the document's shape -------------------------------------------------------------------
class _Upper(fields.String):
    """An enum value, in any case."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).upper()


def _one_of(enum: Any, **kwargs: Any) -> _Upper:
    return _Upper(validate=validate.OneOf([m.value for m in enum]), **kwargs)


class EntrySchema(Schema):
    """One instance of the document; unknown keys are errors, null is as good as absent."""

    name = fields.String(required=True,
                         validate=validate.Length(min=1, max=rules.MAX_NAME_LENGTH))
    scope = _one_of(HopperScope, required=True)
    project_id = fields.String(validate=validate.Length(min=1, max=rules.MAX_TEXT_LENGTH),
                               allow_none=True)
    type = _one_of(InstanceType, allow_none=True)
    config = fields.Dict(keys=fields.String(), allow_none=True)
    metadata = fields.Dict(keys=fields.String(), allow_none=True)
    labels = fields.Dict(keys=fields.String(), allow_none=True)
    status = _one_of(InstanceStatus, allow_none=True)
    parent = fields.String(validate=validate.Length(min=1, max=rules.MAX_NAME_LENGTH + 20),
                           allow_none=True)
    children = fields.List(fields.Nested(lambda: EntrySchema()), allow_none=True)


class DocumentSchema(Schema):
    instances = fields.List(fields.Nested(EntrySchema), required=True)


# -- the checked document ---------------------------------------------------------------------
@dataclass(slots=True)
class Entry:
    """One instance as the document wants it; ``parent`` is the index of its parent entry,
    ``parent_ref`` an instance of the graph (id or SCOPE:NAME) for a top-level entry."""

    path: str
    name: str
    scope: HopperScope
    project_id: str | None = None
    instance_type: InstanceType | None = None
    config: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    status: InstanceStatus | None = None
    parent: int | None = None
    parent_ref: str | None = None
    labels: dict[str, str | None] | None = None

    @property
    def label(self) -> str:
        return f"{self.scope.value}:{self.name}"

    def spec(self, parent_id: str | None) -> InstanceSpec:
        return InstanceSpec(name=self.name, scope=self.scope, parent_id=parent_id,
                            project_id=self.project_id, instance_type=self.instance_type,
                            config=self.config, metadata=self.metadata,
                            labels=None if self.labels is None else {
                                k: v for k, v in self.labels.items() if v is not None})


def read_document(text: str, fmt: str = "yaml") -> Any:
    """The data of a document's text, ``fmt`` "yaml" (which also reads JSON) or "json"."""
    try:
        return json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        detail = " ".join(str(exc).split()) if not isinstance(exc, RecursionError) \
            else "nested too deeply"
        raise ValidationError(f"the document is not valid {fmt.upper()}: {detail}",
                              errors={"document": [f"not valid {fmt.upper()}"]}) from None


def check_document(data: Any) -> list[Entry]:
    """The document's entries, parents before children, or a ValidationError naming every
    place its shape is wrong (or the first rule it breaks). Reads nothing."""
    if not isinstance(data, Mapping):
        raise ValidationError("the document must be a map with an `instances` list", errors={
            "document": [f"is {type(data).__name__}, not a map"]})
    rules.check_nesting("document", data, MAX_DOCUMENT_NESTING)
    try:
        loaded = DocumentSchema().load(data)
    except SchemaError as exc:
        errors = flatten_errors(exc.messages, whole="document", brackets=True)
        first = next(iter(errors.items()))
        raise ValidationError(f"invalid document: {first[0]}: {'; '.join(first[1])}",
                              errors=errors) from None
    entries = _flatten_entries(loaded["instances"])
    _link_references(entries)
    ordered = _parents_first(entries)
    projects: list[str | None] = []  # what each entry has or inherits within the document
    for entry in ordered:
        projects.append(_check_entry(entry, ordered, projects))
    return ordered


def _flatten_entries(items: list[dict[str, Any]]) -> list[Entry]:
    """Every entry of the nested lists, each with its path and its parent's index (parents
    first); without recursion, so the order is the document's."""
    entries: list[Entry] = []
    stack: list[tuple[str, dict[str, Any], int | None]] = [
        (f"instances[{i}]", item, None) for i, item in reversed(list(enumerate(items)))]
    while stack:
        path, item, parent = stack.pop()
        entries.append(_entry(path, item, parent))
        index = len(entries) - 1
        children = item.get("children") or []
        stack.extend((f"{path}.children[{i}]", child, index)
                     for i, child in reversed(list(enumerate(children))))
    return entries


def _entry(path: str, item: dict[str, Any], parent: int | None) -> Entry:
    kind = item.get("type")
    status = item.get("status")
    if parent is not None and item.get("parent") is not None:
        raise ValidationError(f"{path}.parent: a nested entry's parent is the one it is "
                              "nested in", errors={f"{path}.parent": [
                                  "only a top-level entry names its parent"]})
    labels = item.get("labels")
    if labels is not None:
        try:
            check_labels(labels, removals=True)  # null removes, as in a PATCH
        except ValidationError as exc:  # name the entry's path, as the schema's errors do
            raise ValidationError(f"{path}: {exc.message}", errors={
                f"{path}.{key}": messages for key, messages in exc.errors.items()}) from None
    return Entry(path, rules.nfc(item["name"]), HopperScope(item["scope"]),
                 rules.nfc(item.get("project_id")),
                 InstanceType(kind) if kind else None, item.get("config"),
                 item.get("metadata"), InstanceStatus(status) if status else None, parent,
                 item.get("parent"), labels)


def _link_references(entries: list[Entry]) -> None:
    """A top-level ``parent`` that names an entry of the document becomes a link to it;
    names appear once per scope."""
    seen: dict[tuple[HopperScope, str], int] = {}
    for index, entry in enumerate(entries):
        key = (entry.scope, entry.name)
        if key in seen:
            raise ValidationError(
                f"{entry.path}.name: {entry.label} appears twice in the document (also at "
                f"{entries[seen[key]].path})",
                errors={f"{entry.path}.name": ["a name appears once per scope"]})
        seen[key] = index
    for entry in entries:
        scope, sep, name = (entry.parent_ref or "").partition(":")
        if sep and scope.upper() in HopperScope.__members__:
            target = seen.get((HopperScope(scope.upper()), rules.nfc(name)))
            if target is not None:
                entry.parent, entry.parent_ref = target, None


def _check_entry(entry: Entry, entries: list[Entry], projects: list[str | None]
                 ) -> str | None:
    """The rules that need no graph: those of a create, and the scope order within the
    document (an ORCHESTRATION's project_id against its PROJECT's, when both are here).
    Returns the project_id the entry has or inherits here (None: not known before the
    graph is read); ``projects`` holds its parents'."""
    has_parent = entry.parent is not None or entry.parent_ref is not None
    try:
        rules.check_spec(entry.spec(_PLACEHOLDER_PARENT if has_parent else None))
    except HopperGraphError as exc:
        raise located(exc, entry) from None
    if entry.parent is None:
        return entry.project_id
    parent = entries[entry.parent]
    if parent.scope not in ALLOWED_PARENT_SCOPES[entry.scope]:
        raise ScopeRuleViolation(
            f"{entry.path}.scope: a {entry.scope.value} instance cannot be under a "
            f"{parent.scope.value} one ({parent.path})",
            errors={f"{entry.path}.scope": [f"not allowed under {parent.scope.value}"]})
    inherited = projects[entry.parent]
    if entry.scope is HopperScope.PROJECT or inherited is None:
        return entry.project_id
    if entry.project_id not in (None, inherited):
        raise ScopeRuleViolation(
            f"{entry.path}.project_id: an ORCHESTRATION inherits project_id {inherited!r}",
            errors={f"{entry.path}.project_id": [f"must be {inherited!r} or omitted"]})
    return inherited


def _parents_first(entries: list[Entry]) -> list[Entry]:
    """The entries ordered so that each comes after its parent; a cycle of ``parent``
    references is an error. Indexes are renumbered to the new order."""
    children: dict[int, list[int]] = {}
    for index, entry in enumerate(entries):
        if entry.parent is not None:
            children.setdefault(entry.parent, []).append(index)
    order: list[int] = []
    stack = [i for i in reversed(range(len(entries))) if entries[i].parent is None]
    while stack:
        index = stack.pop()
        order.append(index)
        stack.extend(reversed(children.get(index, [])))
    if len(order) < len(entries):
        placed = set(order)
        stuck = next(e for i, e in enumerate(entries) if i not in placed)
        raise ValidationError(f"{stuck.path}.parent: the parent references form a cycle",
                              errors={f"{stuck.path}.parent": ["parents form a cycle"]})
    position = {old: new for new, old in enumerate(order)}
    ordered = [entries[i] for i in order]
    for entry in ordered:
        entry.parent = position[entry.parent] if entry.parent is not None else None
    return ordered


def located(exc: HopperGraphError, entry: Entry) -> HopperGraphError:
    """The same error, its message and field paths placed at ``entry`` in the document."""
    errors = {f"{entry.path}.{_ENTRY_FIELD.get(k, k)}": v for k, v in exc.errors.items()}
    message = f"{entry.path} ({entry.label}): {exc.message}"
    if errors:
        message += " (" + "; ".join(f"{path}: {', '.join(map(str, messages))}"
                                    for path, messages in list(errors.items())[:3]) + ")"
    return type(exc)(message, errors=errors or {entry.path: [exc.message]}, **exc.details)


# -- the report -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AppliedInstance:
    """What apply did to one entry: created, updated (``changed`` names what) or unchanged."""

    path: str
    action: str
    instance: HopperInstance
    changed: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.instance.scope.value}:{self.instance.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "action": self.action, "id": self.instance.id,
                "scope": self.instance.scope.value, "name": self.instance.name,
                "status": self.instance.status.value, "version": self.instance.version,
                "changed": list(self.changed)}


@dataclass(slots=True)
class ApplyReport:
    items: list[AppliedInstance] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for item in self.items if item.action == action)

    @property
    def changed(self) -> bool:
        """Whether the apply wrote anything."""
        return any(item.action != UNCHANGED for item in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {"items": [item.to_dict() for item in self.items],
                **{action: self.count(action) for action in (CREATED, UPDATED, UNCHANGED)}}


# -- applying -----------------------------------------------------------------------------------
def apply_document(manager: InstanceManager, data: Any, *, replace: bool = False,
                   actor: str | None = None, progress: Progress | None = None
                   ) -> ApplyReport:
    """Make the graph hold what the document ``data`` describes (see the module's
    docstring); returns what was created, updated and left unchanged, in document order
    (parents first)."""
    entries = check_document(data)
    return _Applier(manager, entries, replace, actor).run(progress)


class _Applier:
    def __init__(self, manager: InstanceManager, entries: list[Entry], replace: bool,
                 actor: str | None) -> None:
        self.manager, self.entries, self.replace, self.actor = manager, entries, replace, actor
        self.found: list[HopperInstance | None] = []
        self.ids: list[str | None] = []

    def run(self, progress: Progress | None) -> ApplyReport:
        self._plan()
        report = ApplyReport()
        for index, entry in enumerate(self.entries):
            try:
                item = self._apply(index, entry)
            except HopperGraphError as exc:
                raise located(exc, entry) from None
            self.ids[index] = item.instance.id
            report.items.append(item)
            if progress is not None:
                progress(item, len(report.items), len(self.entries))
        return report

    # -- before the first write: read and compare everything ----------------------------
    def _plan(self) -> None:
        """Read every named instance and check that each that exists is where the
        document puts it, and that every status asked for can be reached; what breaks
        here has changed nothing."""
        existing = self._read_existing()
        for entry in self.entries:
            try:
                current = self._plan_entry(entry, existing.get((entry.scope, entry.name)))
            except HopperGraphError as exc:
                raise located(exc, entry) from None
            self.found.append(current)
            self.ids.append(current.id if current is not None else None)

    def _read_existing(self) -> dict[tuple[HopperScope, str], HopperInstance]:
        """Every instance the document names that exists, a batch of names per query."""
        found: dict[tuple[HopperScope, str], HopperInstance] = {}
        for start in range(0, len(self.entries), _READ_BATCH):
            keys = [{"scope": e.scope.value, "name": e.name}
                    for e in self.entries[start:start + _READ_BATCH]]
            for instance in self.manager.find_by_scope_and_names(keys):
                found[(instance.scope, instance.name)] = instance
        return found

    def _plan_entry(self, entry: Entry, current: HopperInstance | None
                    ) -> HopperInstance | None:
        """Check one entry against what the graph holds (``current``: its instance, if
        any): the parent and other fixed fields, and that its status can be reached."""
        if current is not None:
            self._check_fixed(entry, current, self._parent_id(entry))
        elif entry.parent is None:
            self._parent_id(entry)  # it must exist
        status = current.status if current is not None else InstanceStatus.CREATED
        wanted = entry.status
        if wanted is not None and wanted is not status and (
                current is None or not _status_holds(current, wanted)):
            event_to(current.id if current else entry.label, status, wanted)
        return current

    def _find(self, entry: Entry) -> HopperInstance | None:
        try:
            return self.manager.get_by_scope_and_name(entry.scope, entry.name)
        except NotFound:
            return None

    def _parent_id(self, entry: Entry) -> str | None:
        """The id of the entry's parent: an entry's (None while it is still to be
        created) or the instance ``parent`` names."""
        if entry.parent is not None:
            return self.ids[entry.parent]
        if entry.parent_ref is None:
            return None
        scope, sep, name = entry.parent_ref.partition(":")
        try:
            if sep and scope.upper() in HopperScope.__members__:
                return self.manager.get_by_scope_and_name(scope.upper(), name).id
            return self.manager.get(entry.parent_ref).id
        except NotFound:
            raise NotFound(f"parent {entry.parent_ref!r} does not exist", errors={
                "parent": ["no such instance in the graph or the document"]}) from None

    def _check_fixed(self, entry: Entry, current: HopperInstance,
                     parent_id: str | None) -> None:
        """What apply does not change must match: the parent, project_id and type."""
        wanted_parent = parent_id if parent_id is not None or entry.parent is None \
            else f"the new instance of {self.entries[entry.parent].path}"
        problems = {
            "parent": (current.parent_id, wanted_parent),
            "project_id": (current.project_id, entry.project_id or current.project_id),
            "type": (current.instance_type.value,
                     (entry.instance_type or current.instance_type).value),
        }
        for name, (have, want) in problems.items():
            if have != want:
                raise Conflict(f"{entry.label} exists with {name} {have or 'none'}, not "
                               f"{want}; apply does not move or retype instances",
                               errors={name: [f"is {have or 'none'} in the graph"]},
                               id=current.id)

    # -- the writes ---------------------------------------------------------------------------
    def _apply(self, index: int, entry: Entry) -> AppliedInstance:
        parent_id = self._parent_id(entry)
        current, action = self.found[index], UNCHANGED
        if current is None:
            current, action = self._create(entry, parent_id)
        return self._converge(entry, current, parent_id, action)

    def _create(self, entry: Entry, parent_id: str | None) -> tuple[HopperInstance, str]:
        """Create the entry's instance; if another writer made it first (a constraint
        refused ours), that one, to be compared like any existing instance. A parent
        that kept changing under racing creates is tried again."""
        attempts = _ATTEMPTS
        while True:
            try:
                return self.manager.create(entry.spec(parent_id), actor=self.actor), CREATED
            except (Conflict, ScopeRuleViolation) as exc:
                existing = self._find(entry)
                if existing is not None:
                    return existing, UNCHANGED
                attempts -= 1
                if not isinstance(exc, ConcurrentModification) or not attempts:
                    raise

    def _converge(self, entry: Entry, current: HopperInstance, parent_id: str | None,
                  action: str) -> AppliedInstance:
        """Write what differs, pinned to the version compared; compare again if it moved."""
        for _ in range(_ATTEMPTS):
            self._check_fixed(entry, current, parent_id)
            update = _differences(entry, current, self.replace)
            if not update:
                return AppliedInstance(entry.path, action, current)
            try:
                updated = self.manager.update(current.id, replace=self.replace,
                                              actor=self.actor,
                                              expected_version=current.version, **update)
            except ConcurrentModification:
                current = self.manager.get(current.id)
                continue
            return AppliedInstance(entry.path, UPDATED if action == UNCHANGED else action,
                                   updated, tuple(update))
        raise ConcurrentModification(f"{entry.label} kept changing while apply compared it",
                                     id=current.id)


def _differences(entry: Entry, current: HopperInstance, replace: bool) -> dict[str, Any]:
    """The update that brings ``current`` in line with ``entry``: only what differs."""
    stored = {"name": current.name, "scope": current.scope.value,
              "config_set": json.dumps(current.config_set),
              "metadata": json.dumps(current.metadata), "labels": json.dumps(current.labels)}
    changes = rules.field_changes(stored, None, entry.config, entry.metadata, replace,
                                  entry.labels)
    update: dict[str, Any] = {}
    if "config_set" in changes and json.loads(changes["config_set"]) != current.config_set:
        update["config"] = entry.config
    if "metadata" in changes and json.loads(changes["metadata"]) != current.metadata:
        update["metadata"] = entry.metadata
    if "labels" in changes:  # field_changes gives labels only when they differ
        update["labels"] = entry.labels
    if entry.status is not None and not _status_holds(current, entry.status):
        update["status"] = entry.status
    return update


def _status_holds(current: HopperInstance, wanted: InstanceStatus) -> bool:
    """Whether ``current`` is where the entry wants it; an EPHEMERAL instance archives
    itself when stopped, so ARCHIVED is as good as STOPPED for it."""
    if current.status is wanted:
        return True
    return (wanted is InstanceStatus.STOPPED and current.status is InstanceStatus.ARCHIVED
            and current.instance_type is InstanceType.EPHEMERAL)
