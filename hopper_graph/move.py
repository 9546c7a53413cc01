"""Moving an instance, with its subtree, to a new parent.

A move is one transaction (``Mover.move``):

1. **Read** what the rules need (``get_move_facts``): the instance and its ancestors, the
   new parent and its ancestors, the new parent's children that count, the depth limit.
2. **Lock** the instances whose position the checks rely on, top down (by depth): the
   instance, its old parent, its new parent, and the ancestors of each up to (not
   including) the lowest one they share. A concurrent move that could change either chain
   below that point must lock one of them too, so the two queue; the shared ancestors
   above are ancestors of both ends before and after any other move, so no move of theirs
   can close a cycle through this one. Moves in one project never lock the GLOBAL.
3. **Read again** under the locks, in the locking statement itself (``lock_for_move``; if
   the chains changed meanwhile, lock what is new and read again), and check the rules
   (:func:`check_move`, pure).
4. **Write** (``move_instance``): the edge, ``parent_id``, the version, the ``TopProject``
   label, one ``move`` event; depth and ``project_id`` of the subtree only when they change,
   and then after locking the subtree top down (``lock_subtree_for_move``), so no create
   below can slip in with a stale depth or project_id.

The rules are those of a create at the new place (scope order, SINGLETON, the new parent's
child limit with ARCHIVED children not counted, nothing under an ARCHIVED parent, the depth
limit for the deepest node of the moved subtree), plus: a GLOBAL never moves, no cycle, an
ACTIVE or PAUSED instance only under an ACTIVE parent, and ``expected_parent_id`` when
given is the current parent. A create under the new parent locks it, and a stop cascade
locks its whole subtree, so neither can slip between a move's check and its write.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from neo4j import ManagedTransaction

from hopper_graph import audit, rules
from hopper_graph import config as scope_config
from hopper_graph.audit import new_event, stored_event
from hopper_graph.enums import ALLOWED_PARENT_SCOPES, HopperScope, InstanceStatus, InstanceType
from hopper_graph.errors import (
    ConcurrentModification,
    DuplicateProject,
    GlobalNotMovable,
    LimitExceeded,
    MoveCycle,
    ParentArchived,
    ParentMismatch,
    ParentNotActive,
    ScopeRuleViolation,
    ValidationError,
)
from hopper_graph.models import HopperInstance
from hopper_graph.queries import QUERIES
from hopper_graph.repository import WRITE_ATTEMPTS, InstanceRepository
from hopper_graph.rules import Expected
from hopper_graph.statements import check_version, not_found, restore_in_progress, utcnow


@dataclass(frozen=True, slots=True)
class MoveFacts:
    """What ``get_move_facts`` read: the instance, its ancestors (nearest first), the new
    parent (None: no such instance), its chain (itself first, then its ancestors), and
    what the create rules read of it."""

    instance: dict[str, Any]
    above: list[dict[str, Any]]
    parent: dict[str, Any] | None
    path: list[dict[str, Any]]
    child_count: int
    sibling_types: list[str]
    max_depth: int | None
    restoring: bool

    @classmethod
    def of(cls, row: dict[str, Any]) -> MoveFacts:
        config = row["global_config"]
        return cls(row["instance"], sorted(row["above"], key=lambda a: -a["depth"]),
                   row["parent"], sorted(row["path"], key=lambda a: -a["depth"]),
                   row["child_count"], row["same_scope_sibling_types"],
                   scope_config.max_depth(json.loads(config)) if config else None,
                   bool(row["restoring"]))


@dataclass(frozen=True, slots=True)
class MovePlan:
    """A checked move: what ``move_instance`` writes."""

    instance_id: str
    from_parent_id: str | None
    to_parent_id: str
    depth_delta: int
    project_id: str | None
    """The subtree's new project_id (an ORCHESTRATION moved to another project), or None."""
    top_project: bool


# -- the rules (pure) ------------------------------------------------------------------------
def check_movable(instance: dict[str, Any]) -> None:
    """A GLOBAL never moves."""
    if instance["scope"] == HopperScope.GLOBAL.value:
        raise GlobalNotMovable(f"instance {instance['id']} is the GLOBAL instance: it is "
                               "always the root and never moves",
                               errors={"id": ["the GLOBAL instance never moves"]},
                               id=instance["id"], rule="global-never-moves")


def lock_ids(facts: MoveFacts) -> list[str]:
    """What the move locks, top down: the instance, its old and new parents, and each
    one's ancestors below the lowest ancestor the two ends share."""
    shared = {a["id"] for a in facts.above} & {a["id"] for a in facts.path}
    floor = max((a["depth"] for a in facts.path if a["id"] in shared), default=-1)
    chosen = {facts.instance["id"]: facts.instance["depth"]}
    chosen |= {a["id"]: a["depth"] for a in (*facts.above, *facts.path)
               if a["depth"] > floor}
    if facts.above:
        chosen[facts.above[0]["id"]] = facts.above[0]["depth"]
    if facts.path:
        chosen[facts.path[0]["id"]] = facts.path[0]["depth"]
    return sorted(chosen, key=lambda i: (chosen[i], i))


def check_move(facts: MoveFacts, parent_id: str, expected_parent_id: str | None,
               expected_version: Expected) -> MovePlan:
    """The move of ``facts.instance`` under ``parent_id`` (facts read under the locks), or
    the rule it breaks; the depth limit is checked apart (:func:`check_depth`), as it
    needs the subtree's height only when the move goes deeper."""
    instance, parent = facts.instance, facts.parent
    instance_id = instance["id"]
    check_movable(instance)
    if facts.restoring:
        raise restore_in_progress(instance_id)
    check_version(instance, expected_version)
    current = instance.get("parent_id")
    if expected_parent_id is not None and expected_parent_id != current:
        raise ParentMismatch(
            f"instance {instance_id} hangs under {current}, not under {expected_parent_id}",
            errors={"expected_parent_id": [f"the current parent is {current}"]},
            id=instance_id, parent_id=current, expected_parent_id=expected_parent_id,
            rule="expected-parent")
    if parent is None:
        raise ScopeRuleViolation(f"parent {parent_id} does not exist", errors={
            "parent_id": ["no instance with this id"]}, id=instance_id, parent_id=parent_id,
            rule="parent-exists")
    if parent["id"] == current:
        raise ValidationError(f"instance {instance_id} already hangs under {current}",
                              errors={"parent_id": ["is already the parent"]},
                              id=instance_id, parent_id=current, rule="new-parent")
    if any(a["id"] == instance_id for a in facts.path):
        raise MoveCycle(
            f"instance {instance_id} cannot move under {parent['id']}: that is "
            + ("the instance itself" if parent["id"] == instance_id else "its descendant"),
            errors={"parent_id": ["is the instance itself or one of its descendants"]},
            id=instance_id, parent_id=parent["id"], rule="no-cycle")
    check_place(instance, parent, facts.child_count, facts.sibling_types)
    scope = instance["scope"]
    project_id = None
    if scope == HopperScope.ORCHESTRATION.value and parent["project_id"] != instance.get(
            "project_id"):
        project_id = parent["project_id"]
    return MovePlan(instance_id, current, parent["id"],
                    parent["depth"] + 1 - instance["depth"], project_id,
                    scope == HopperScope.PROJECT.value
                    and parent["scope"] == HopperScope.GLOBAL.value)


def check_place(instance: dict[str, Any], parent: dict[str, Any], child_count: int,
                sibling_types: Collection[str]) -> None:
    """The create rules at the new place: scope order, not under ARCHIVED, a running
    instance only under an ACTIVE parent, SINGLETON, the parent's child limit."""
    instance_id, scope = instance["id"], HopperScope(instance["scope"])
    parent_scope = HopperScope(parent["scope"])
    if parent_scope not in ALLOWED_PARENT_SCOPES[scope]:
        allowed = rules.one_of(sorted(s.value for s in ALLOWED_PARENT_SCOPES[scope]))
        raise ScopeRuleViolation(
            f"instance {instance_id} is {rules.with_article(scope.value)} and cannot move "
            f"under {rules.with_article(parent_scope.value)} parent",
            errors={"parent_id": [f"parent is {parent_scope.value}; "
                                  f"{rules.with_article(scope.value)} needs {allowed}"]},
            id=instance_id, parent_id=parent["id"], rule="scope-order")
    if parent["status"] == InstanceStatus.ARCHIVED.value:
        raise ParentArchived(f"parent {parent['id']} is ARCHIVED: instance {instance_id} "
                             "cannot move under it", id=instance_id, parent_id=parent["id"],
                             rule="parent-not-archived")
    if (InstanceStatus(instance["status"]).is_running
            and parent["status"] != InstanceStatus.ACTIVE.value):
        raise ParentNotActive(
            f"instance {instance_id} is {instance['status']}: it may move only under an "
            f"ACTIVE parent, and {parent['id']} is {parent['status']}", id=instance_id,
            parent_id=parent["id"], parent_status=parent["status"],
            rule="running-under-active")
    if sibling_types and (instance["instance_type"] == InstanceType.SINGLETON.value
                          or InstanceType.SINGLETON.value in sibling_types):
        raise ScopeRuleViolation(
            f"instance {instance_id} cannot move under {parent['id']}: a SINGLETON "
            f"{scope.value} instance has no same-scope sibling",
            errors={"parent_id": ["SINGLETON forbids a same-scope sibling there"]},
            id=instance_id, parent_id=parent["id"], rule="singleton")
    limit = scope_config.max_child_instances(json.loads(parent["config"]))
    if limit is not None and child_count >= limit:
        raise LimitExceeded(
            f"instance {instance_id} cannot move under {parent['id']}: it already has "
            f"{child_count} children that are not ARCHIVED (limits.max_child_instances = "
            f"{limit})", id=instance_id, parent_id=parent["id"],
            limit="limits.max_child_instances", value=limit, rule="max-child-instances")


def check_depth(instance_id: str, new_depth: int, height: int, max_depth: int | None) -> None:
    """The deepest instance of the moved subtree stays within ``limits.max_depth``."""
    if max_depth is not None and new_depth + height > max_depth:
        raise LimitExceeded(
            f"instance {instance_id} cannot move there: its subtree would reach depth "
            f"{new_depth + height} (limits.max_depth = {max_depth})", id=instance_id,
            limit="limits.max_depth", value=max_depth, rule="max-depth")


# -- the transaction ------------------------------------------------------------------------
class Mover:
    """Moves instances through the repository's writes (events reach its subscribers)."""

    def __init__(self, repository: InstanceRepository) -> None:
        self.repository = repository

    def move(self, instance_id: str, new_parent_id: str, *,
             expected_parent_id: str | None = None, actor: str | None = None,
             reason: str | None = None, expected_version: Expected = None) -> HopperInstance:
        """Move an instance, with its subtree, under ``new_parent_id``; one ``move``
        event. See the module's docstring for the rules and the locks."""
        audit.check_event_text(actor, reason)
        new_parent_id = _id(new_parent_id, "parent_id")
        if expected_parent_id is not None:
            expected_parent_id = _id(expected_parent_id, "expected_parent_id")
        try:
            row = self.repository.write(self._move, instance_id, new_parent_id,
                                        expected_parent_id, actor, reason, expected_version)
        except DuplicateProject:  # the constraint names nobody: say who holds the project
            raise self._duplicate_project(instance_id) from None
        return self.repository.instance(row)

    def _move(self, tx: ManagedTransaction, instance_id: str, parent_id: str,
              expected_parent_id: str | None, actor: str | None, reason: str | None,
              expected_version: Expected) -> dict[str, Any]:
        facts = self._locked_facts(tx, instance_id, parent_id)
        plan = check_move(facts, parent_id, expected_parent_id, expected_version)
        if plan.depth_delta or plan.project_id is not None:  # the subtree is rewritten
            height = tx.run(QUERIES.lock_subtree_for_move.text, id=instance_id).single(
                strict=True)["height"]
            if plan.depth_delta > 0:
                check_depth(instance_id, facts.instance["depth"] + plan.depth_delta, height,
                            facts.max_depth)
        now = utcnow()
        status = facts.instance["status"]
        event = new_event(instance_id, "move", status, status, now, actor=actor,
                          reason=reason)
        event |= {"from_parent_id": plan.from_parent_id, "to_parent_id": plan.to_parent_id}
        record = tx.run(QUERIES.move_instance.text, id=instance_id, parent_id=parent_id,
                        depth_delta=plan.depth_delta, project_id=plan.project_id,
                        top_project=plan.top_project, now=now,
                        event=stored_event(event)).single(strict=True)
        audit.record_written([event])
        instance: dict[str, Any] = record["instance"]
        return instance

    def _locked_facts(self, tx: ManagedTransaction, instance_id: str,
                      parent_id: str) -> MoveFacts:
        """The facts, read under the locks of every instance :func:`lock_ids` names for
        them (a chain that changed while we waited is locked and read again). Each lock
        reads the facts again in the same statement (``lock_for_move``)."""
        locked: set[str] = set()
        record = tx.run(QUERIES.get_move_facts.text, id=instance_id,
                        parent_id=parent_id).single()
        for _ in range(WRITE_ATTEMPTS):
            if record is None or record["instance"].get("id") is None:
                raise not_found(instance_id)  # (deleted while we waited for a lock)
            facts = MoveFacts.of(dict(record))
            check_movable(facts.instance)  # before any lock: the GLOBAL is never locked
            wanted = [i for i in lock_ids(facts) if i not in locked]
            if not wanted:
                return facts
            record = tx.run(QUERIES.lock_for_move.text, ids=wanted, id=instance_id,
                            parent_id=parent_id).single()
            if record is not None:
                locked |= set(record["locked"])
        raise ConcurrentModification(
            f"the hierarchy around instance {instance_id} kept changing while the move "
            "took its locks; try again", id=instance_id)

    def _duplicate_project(self, instance_id: str) -> DuplicateProject:
        """The error for a PROJECT that would become a second top-level PROJECT of its
        project_id, naming the one that holds it (read after the refused commit)."""
        moved = self.repository.get(instance_id)
        project_id = str(moved.project_id)
        row = self.repository.row(QUERIES.get_top_project.text, project_id=project_id)
        holder = f": {row['id']} ({row['name']})" if row else ""
        return DuplicateProject(
            f"instance {instance_id} cannot become a top-level PROJECT: project "
            f"{project_id!r} already has one{holder}",
            errors={"parent_id": [f"project {project_id!r} already has a top-level PROJECT"]},
            id=instance_id, project_id=project_id, existing_id=row["id"] if row else None,
            rule="one-top-project")


def _id(value: object, field: str) -> str:
    """A parent id as the graph stores it, or a ValidationError naming ``field``."""
    try:
        return rules.canonical_id(value)
    except ValidationError:
        raise ValidationError(f"{field} must be a UUID", errors={
            field: ["must be a UUID"]}) from None
