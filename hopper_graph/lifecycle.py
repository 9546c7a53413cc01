"""InstanceLifecycleManager: plan a change, run its hooks, apply it atomically.

The machine (``machine``) decides what an event does to one instance, the cascade
(``cascade``) what it does below it, and the statements (``statements``) write it. This
module puts them together: one transaction per request, in which the status changes, the
version bumps, the timestamps, every cascaded change and one audit event per change commit
together or not at all.

A change without before-hooks and without a subtree is one conditional auto-commit
statement (one round trip). A cascade locks top down (parent, instance, then the subtree),
so two racing transitions serialise and the second sees the first's result. With
before-hooks, each change has a *plan* function (a plain read: locks nothing, writes
nothing) and an *apply* function (locks, plans again under the locks, and writes): the
hooks run between the two, holding no lock, and when the apply's plan is not the one the
hooks saw, the change is planned again and the hooks run again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from neo4j import ManagedTransaction

from hopper_graph import audit, liens, rules
from hopper_graph.audit import new_event
from hopper_graph.cascade import Subtree
from hopper_graph.enums import InstanceStatus
from hopper_graph.errors import ConcurrentModification, DuplicateName
from hopper_graph.gcpause import gc_paused
from hopper_graph.graph import Graph
from hopper_graph.hooks import (
    HookContext,
    HookRegistry,
    create_context,
    delete_contexts,
    hook_contexts,
)
from hopper_graph.machine import (
    EDGES,
    EVENTS,
    TRANSITIONS,
    StatusChange,
    TransitionSubject,
    decide,
    event_to,
)
from hopper_graph.models import HopperInstance, InstanceSpec
from hopper_graph.queries import QUERIES
from hopper_graph.repository import WRITE_ATTEMPTS, InstanceRepository
from hopper_graph.rules import Expected
from hopper_graph.statements import (
    check_version,
    delete_subtree,
    lock_with_parent,
    not_found,
    restore_in_progress,
    stored_instance,
    update_fields,
    utcnow,
    write_changes,
)

log = logging.getLogger("hopper_graph.lifecycle")
P = TypeVar("P")
R = TypeVar("R")


# -- results ------------------------------------------------------------------------------
@dataclass(slots=True)
class TransitionResult:
    """What a lifecycle call did: the requested change, every cascaded one, the instance."""

    id: str
    event: str
    previous_status: InstanceStatus
    status: InstanceStatus
    at: datetime
    cascaded: list[StatusChange]
    instance: HopperInstance


@dataclass(slots=True)
class DeleteResult:
    """What a delete did: the ids deleted (deepest first) and those stopped first by force."""

    id: str
    deleted: list[str]
    stopped: list[StatusChange]


@dataclass(slots=True)
class _TransitionPlan:
    """A transition decided from the stored state: the instance as read, its own change,
    and every change in the order they are written (its own included)."""

    row: dict[str, Any]
    own: StatusChange
    changes: list[StatusChange]
    at: datetime


@dataclass(frozen=True, slots=True)
class _Edit:
    """What an update with a status asks for: the fields, and the status to move to."""

    name: str | None
    config: dict[str, Any] | None
    metadata: dict[str, Any] | None
    replace: bool
    status: InstanceStatus | str
    labels: dict[str, str | None] | None = None


class _Stale(Exception):
    """The state a plan (and the before-hooks) saw changed before the write: plan again."""


_HOOKS_OF = {event: (f"on_{event}", "on_archive") if event == "stop" else (f"on_{event}",)
             for event in EVENTS}
"""The hooks an event's change of the instance itself can fire (a stop may archive)."""
_NEEDS_ACTIVE_PARENT = {"start", "resume"}
_CASCADING = {"stop", "pause", "resume", "archive"}


class InstanceLifecycleManager:
    """Validates and applies transitions, runs hooks, writes the audit trail."""

    def __init__(self, graph: Graph, repository: InstanceRepository,
                 hooks: HookRegistry | None = None) -> None:
        self.graph = graph
        self.repository = repository
        self.hooks = hooks if hooks is not None else HookRegistry()

    # create and delete go through here too, for their hooks
    def create(self, spec: InstanceSpec, actor: str | None = None) -> HopperInstance:
        def before(props: dict[str, Any]) -> None:
            self.hooks.run_before([create_context(props["id"], actor, utcnow())])

        instance = self.repository.create(
            spec, actor=actor, before_write=before if self.hooks.has_before("on_create")
            else None)
        self.hooks.run_after([create_context(instance.id, actor, instance.created_at)])
        return instance

    def bulk_create(self, specs: Sequence[InstanceSpec], actor: str | None = None
                    ) -> list[str]:
        """Create a whole hierarchy in one transaction. The on_create before-hooks see each
        instance (in order, ids assigned) before the transaction; any veto creates
        nothing. The after-hooks see each one after commit."""
        def before(checked: list[InstanceSpec]) -> None:
            at = utcnow()
            self.hooks.run_before([create_context(str(s.id), actor, at) for s in checked])

        ids = self.repository.bulk_create(
            specs, actor=actor, before_write=before if self.hooks.has_before("on_create")
            else None)
        if self.hooks:
            at = utcnow()
            self.hooks.run_after([create_context(i, actor, at) for i in ids])
        return ids

    # -- transitions ------------------------------------------------------------------------
    def transition(self, instance_id: str, event: str, *, actor: str | None = None,
                   reason: str | None = None, expected_version: Expected = None
                   ) -> TransitionResult:
        """Apply ``event`` to an instance and its cascade, atomically.

        Without before-hooks and without a cascade this is one statement; with a cascade,
        one transaction that locks the subtree. With before-hooks, the change is planned
        from a plain read, the hooks run, and the write checks the plan still holds."""
        if event not in EVENTS:
            decide(TransitionSubject(instance_id, InstanceStatus.CREATED.value), event)
        if self.hooks.has_before(*_HOOKS_OF[event]):
            result, changes = self._hooked(
                instance_id, True,
                lambda: self.graph.write(self._plan_transition, instance_id, event,
                                         expected_version),
                lambda p: hook_contexts(p.changes, p.at, actor, reason),
                lambda p: self.repository.write(self._apply_transition, instance_id, event,
                                                actor, reason, expected_version, p))
        else:
            done = self._one_statement(instance_id, event, actor, reason, expected_version)
            if done is None:  # a cascade: lock the subtree
                done = self.repository.write(self._apply_transition, instance_id, event,
                                             actor, reason, expected_version, None)
            result, changes = done
        self._after_commit(changes, result.at, actor, reason)
        return result

    def _one_statement(self, instance_id: str, event: str, actor: str | None,
                       reason: str | None, expected_version: Expected
                       ) -> tuple[TransitionResult, list[StatusChange]] | None:
        """The transition as one conditional auto-commit statement; None when it has a
        subtree to cascade to. A refusal becomes the error the state machine raises."""
        at = utcnow()
        ids = [str(uuid.uuid4()), str(uuid.uuid4())]
        audit.check_event_text(actor, reason)
        row = self.repository.write_transition({
            "id": instance_id, "event": event, "edges": EDGES[event],
            "expected_version": rules.expected_list(expected_version),
            "needs_active_parent": event in _NEEDS_ACTIVE_PARENT, "cascades": event != "start",
            "now": at.isoformat(), "event_ids": ids, "actor": actor, "reason": reason})
        if row is None:
            raise not_found(instance_id)
        if row["restoring"]:
            raise restore_in_progress(instance_id)
        if row["protected"]:  # a lien: say whose, with a read (the refusal wrote nothing)
            found = self.graph.read_rows(QUERIES.get_liens_of.text, ids=[instance_id])
            if not found:  # removed since: the caller may try again
                raise ConcurrentModification(f"the liens of {instance_id} changed while it "
                                             "was archived; try again", id=instance_id)
            raise liens.protected(found, event, instance_id)
        if row["cascade"]:
            return None
        check_version({"id": instance_id, "version": row["version"]}, expected_version)
        previous = InstanceStatus(row["before"])
        if row["applies"]:  # the machine's own table, compiled from it, allowed it
            status = TRANSITIONS[previous, event]
        else:  # the machine says why not, as it would have alone
            subject = TransitionSubject(instance_id, row["before"], row["parent_status"],
                                        parent_id=row["instance"].get("parent_id"))
            decide(subject, event)
            raise AssertionError("the statement and the machine disagree")
        changes = [StatusChange(instance_id, event, previous, status)]
        instance = self.repository.instance(row["instance"])
        if instance.status is not status:  # a stopped EPHEMERAL, archived with it
            changes.append(StatusChange(instance_id, "archive", status, instance.status,
                                        instance_id))
        self.repository.committed(_events_of(changes, ids, at, actor, reason))
        return (TransitionResult(instance_id, event, previous, status, at, changes[1:],
                                 instance), changes)

    def _plan_transition(self, tx: ManagedTransaction, instance_id: str, event: str,
                         expected_version: Expected, lock: bool = False) -> _TransitionPlan:
        """Decide the change and its cascade from the stored state: a plain read, or with
        ``lock`` under the locks of the parent, the instance and its subtree."""
        row = lock_with_parent(tx, instance_id, expected_version, lock=lock)
        below = Subtree.read(tx, instance_id, lock) if event in _CASCADING \
            else Subtree.empty()
        subject = TransitionSubject(instance_id, row["status"], row["parent_status"],
                                    below.running(), row.get("parent_id"))
        own = StatusChange(instance_id, event, InstanceStatus(row["status"]),
                           decide(subject, event))
        with gc_paused():  # a cascade can build tens of thousands of changes
            cascaded = below.cascade(event, instance_id, own.status)
            # Stop, pause and archive work bottom up (descendants first); resume top down.
            changes = [own, *cascaded] if event == "resume" else [*cascaded, own]
            changes += below.auto_archive(changes, {instance_id: row["instance_type"]},
                                          instance_id)
        if event == "archive":  # a lien refuses it (an EPHEMERAL's auto-archive goes on)
            liens.refuse_if_protected(tx, [c.id for c in changes if c.event == "archive"],
                                      event, instance_id)
        return _TransitionPlan(row, own, changes, utcnow())

    def _apply_transition(self, tx: ManagedTransaction, instance_id: str, event: str,
                          actor: str | None, reason: str | None, expected_version: Expected,
                          planned: _TransitionPlan | None
                          ) -> tuple[TransitionResult, list[StatusChange]]:
        """Lock, plan again under the locks and write; _Stale when the changes are not
        those ``planned`` (the plan the before-hooks saw; None: no hooks to agree with)."""
        plan = self._plan_transition(tx, instance_id, event, expected_version, lock=True)
        if planned is not None and planned.changes != plan.changes:
            raise _Stale
        instance = write_changes(tx, plan.changes, plan.at, actor, reason, instance_id)
        assert instance is not None  # its lock is held: it is there
        own = plan.own
        result = TransitionResult(instance_id, event, own.previous_status, own.status, plan.at,
                                  [c for c in plan.changes if c is not own],
                                  self.repository.instance(instance))
        return result, plan.changes

    def _hooked(self, instance_id: str, hooked: bool, plan: Callable[[], P],
                contexts: Callable[[P], list[HookContext]],
                apply: Callable[[P | None], R]) -> R:
        """Plan the change from a plain read, run its before-hooks holding no lock, then
        ``apply(plan)``, which raises _Stale when the stored state no longer gives the
        plan: then plan again, at most WRITE_ATTEMPTS times. Without hooks, just apply."""
        for _ in range(WRITE_ATTEMPTS if hooked else 1):
            planned = None
            if hooked:
                planned = plan()
                self.hooks.run_before(contexts(planned))
            try:
                return apply(planned)
            except _Stale:
                continue
        raise ConcurrentModification(
            f"instance {instance_id} kept changing while its hooks ran; try again",
            id=instance_id)

    # -- update -----------------------------------------------------------------------------
    def update(self, instance_id: str, *, name: str | None = None,
               config: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
               replace: bool = False, status: InstanceStatus | str | None = None,
               actor: str | None = None, reason: str | None = None,
               expected_version: Expected = None,
               labels: dict[str, str | None] | None = None) -> HopperInstance:
        """Change fields and, with ``status``, move to that status by the one event that
        leads there, all in one transaction: both apply or neither does."""
        if status is None:
            return self.repository.update(instance_id, name=name, config=config,
                                          metadata=metadata, replace=replace,
                                          expected_version=expected_version, actor=actor,
                                          labels=labels)
        edit = _Edit(name, config, metadata, replace, status, labels)
        try:
            row, changes, at = self._hooked(
                instance_id, self.hooks.has_before(*(f"on_{e}" for e in EVENTS)),
                lambda: self.graph.write(self._plan_update, instance_id, edit.status,
                                         expected_version),
                lambda p: hook_contexts(p[1].changes, p[1].at, actor, reason),
                lambda p: self.repository.write(self._apply_update, instance_id, edit, actor,
                                                reason, expected_version, p))
        except DuplicateName:  # the constraint names nobody: say who holds the name
            scope = self.repository.get(instance_id).scope
            raise self.repository.taken_name(str(name), scope) from None
        self._after_commit(changes, at, actor, reason)
        return self.repository.instance(row)

    def _plan_update(self, tx: ManagedTransaction, instance_id: str,
                     status: InstanceStatus | str, expected_version: Expected
                     ) -> tuple[int, _TransitionPlan]:
        """The instance's version and its transition to ``status``: a plain read."""
        current = lock_with_parent(tx, instance_id, expected_version, lock=False)
        event = event_to(instance_id, current["status"], status)
        return current["version"], self._plan_transition(tx, instance_id, event, None)

    def _apply_update(self, tx: ManagedTransaction, instance_id: str, edit: _Edit,
                      actor: str | None, reason: str | None, expected_version: Expected,
                      planned: tuple[int, _TransitionPlan] | None
                      ) -> tuple[dict[str, Any], list[StatusChange], datetime]:
        """Lock, write the fields, then the transition; _Stale when the instance is not at
        the version ``planned`` read, or its transition is not the planned one."""
        current = lock_with_parent(tx, instance_id, expected_version)
        event = event_to(instance_id, current["status"], edit.status)
        if planned is not None and planned[0] != current["version"]:
            raise _Stale
        update_fields(tx, current, edit.name, edit.config, edit.metadata, edit.replace, actor,
                      edit.labels)
        result, changes = self._apply_transition(tx, instance_id, event, actor, reason, None,
                                                 None if planned is None else planned[1])
        return stored_instance(tx, instance_id), changes, result.at

    # -- delete -----------------------------------------------------------------------------
    def delete(self, instance_id: str, *, force: bool = False, actor: str | None = None,
               reason: str | None = None, expected_version: Expected = None
               ) -> DeleteResult:
        """Delete an instance's subtree; with ``force``, stop what runs in it first
        (descendants first, as a stop cascades). Before-hooks see the plan from a plain
        read; the write checks it still holds."""
        def contexts(plan: DeleteResult) -> list[HookContext]:
            at = utcnow()
            return [*hook_contexts(plan.stopped, at, actor, reason),
                    *delete_contexts(plan.deleted, instance_id, at, actor, reason)]

        result: DeleteResult = self._hooked(
            instance_id, self.hooks.has_before("on_delete", "on_stop", "on_archive"),
            lambda: self.graph.write(self._plan_delete, instance_id, force, expected_version),
            contexts,
            lambda p: self.repository.write(self._apply_delete, instance_id, force, actor,
                                            reason, expected_version, p))
        at = utcnow()
        self._after_commit(result.stopped, at, actor, reason)
        self.hooks.run_after(delete_contexts(result.deleted, instance_id, at, actor, reason))
        return result

    def _plan_delete(self, tx: ManagedTransaction, instance_id: str, force: bool,
                     expected_version: Expected, lock: bool = False) -> DeleteResult:
        """What the delete would stop (with ``force``) and delete, deepest first: a plain
        read, or with ``lock`` under the locks of the parent, the instance and its subtree."""
        root = lock_with_parent(tx, instance_id, expected_version, lock=lock)
        below = Subtree.read(tx, instance_id, lock)
        stopped: list[StatusChange] = []
        if force:
            stopped = below.cascade("stop", instance_id, InstanceStatus.STOPPED)
            if InstanceStatus(root["status"]).is_running:
                subject = TransitionSubject(instance_id, root["status"])
                stopped.append(StatusChange(instance_id, "stop",
                                            InstanceStatus(root["status"]),
                                            decide(subject, "stop")))
        ids = [*(r["id"] for r in reversed(below.rows)), instance_id]  # deepest first
        if not lock:  # the hooks' plan: under the locks, delete_subtree looks again
            liens.refuse_if_protected(tx, ids, "delete", instance_id)
        return DeleteResult(instance_id, ids, stopped)

    def _apply_delete(self, tx: ManagedTransaction, instance_id: str, force: bool,
                      actor: str | None, reason: str | None, expected_version: Expected,
                      planned: DeleteResult | None) -> DeleteResult:
        """Lock, plan again under the locks, and delete; _Stale when the plan is not the
        one ``planned`` (the one the before-hooks saw; None: no hooks to agree with)."""
        plan = self._plan_delete(tx, instance_id, force, expected_version, lock=True)
        if planned is not None and (planned.deleted, planned.stopped) != (
                plan.deleted, plan.stopped):
            raise _Stale
        write_changes(tx, plan.stopped, utcnow(), actor, reason)
        deleted = delete_subtree(tx, instance_id, actor, reason)
        return DeleteResult(instance_id, deleted, plan.stopped)

    def _after_commit(self, changes: list[StatusChange], at: datetime, actor: str | None,
                      reason: str | None) -> None:
        for change in changes:
            log.info("%s %s: %s -> %s", change.event, change.id, change.previous_status.value,
                     change.status.value, extra={
                         "instance_id": change.id, "event": change.event,
                         "from_status": change.previous_status.value,
                         "to_status": change.status.value, "actor": actor,
                         "cause": change.cause})
        if self.hooks:
            self.hooks.run_after(hook_contexts(changes, at, actor, reason))


def _events_of(changes: list[StatusChange], ids: list[str], at: datetime, actor: str | None,
               reason: str | None) -> list[dict[str, Any]]:
    """The events ``transition_instances`` wrote for ``changes``, as the subscribers see them."""
    events = []
    for offset, (change, event_id) in enumerate(zip(changes, ids, strict=False), 1):
        event = new_event(change.id, change.event, change.previous_status.value,
                          change.status.value, at, actor=actor, reason=reason,
                          cause=change.cause, offset=offset)
        event["id"] = event_id
        events.append(event)
    return events
