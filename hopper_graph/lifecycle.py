"""The lifecycle: one state machine, and the manager that applies it atomically.

``InstanceLifecycle`` (python-statemachine) is the single definition of which event moves
which status where, and of the guards: start and resume need an ACTIVE parent, archive
needs nothing below to be running. The transition a caller asks for runs through a machine
bound to the instance as it is stored under its write lock, so its validators raise the
library's typed errors. A cascade moves many instances by the same few edges; it looks them
up in ``TRANSITIONS``, the table compiled from the same machine class, because running a
machine per instance costs ~0.3 ms and a cascade may touch ten thousand.

``InstanceLifecycleManager`` writes one transaction per request: the status changes, the
version bumps, the timestamps, every cascaded change and one audit event per change commit
together or not at all. It takes write locks top down (parent, instance, then the subtree),
so two racing transitions serialise and the second sees the first's result.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from neo4j import ManagedTransaction
from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from hopper_graph.enums import InstanceStatus, InstanceType
from hopper_graph.errors import (
    HookVetoed,
    InstanceRunning,
    InvalidTransition,
    NotFound,
    ParentNotActive,
    ValidationError,
)
from hopper_graph.models import HopperInstance, InstanceSpec, gc_paused
from hopper_graph.queries import QUERIES
from hopper_graph.repository import (
    InstanceRepository,
    delete_subtree,
    lock_with_parent,
    new_event,
    record_appended,
    stored_event,
    update_fields,
    utcnow,
)

log = logging.getLogger("hopper_graph.lifecycle")

EVENTS = ("start", "pause", "resume", "stop", "archive")
HOOKS = ("on_create", "on_start", "on_pause", "on_resume", "on_stop", "on_archive",
         "on_delete")


@dataclass
class TransitionSubject:
    """What the machine is bound to: an instance's status and what its guards look at."""

    id: str
    status: str
    parent_status: str | None = None
    running_below: list[str] = field(default_factory=list)


class InstanceLifecycle(StateMachine):
    """The one lifecycle of every instance (PRODUCT.md, "Lifecycle")."""

    created = State("CREATED", value="CREATED", initial=True)
    active = State("ACTIVE", value="ACTIVE")
    paused = State("PAUSED", value="PAUSED")
    stopped = State("STOPPED", value="STOPPED")
    archived = State("ARCHIVED", value="ARCHIVED", final=True)

    start = (created.to(active, validators="parent_is_active")
             | stopped.to(active, validators="parent_is_active"))
    pause = active.to(paused)
    resume = paused.to(active, validators="parent_is_active")
    stop = active.to(stopped) | paused.to(stopped)
    archive = (created.to(archived, validators="nothing_below_runs")
               | stopped.to(archived, validators="nothing_below_runs"))

    def parent_is_active(self) -> None:
        subject: TransitionSubject = self.model
        if subject.parent_status not in (None, InstanceStatus.ACTIVE.value):
            raise ParentNotActive(
                f"instance {subject.id} cannot become ACTIVE: its parent is "
                f"{subject.parent_status}, not ACTIVE",
                id=subject.id, status=subject.status, parent_status=subject.parent_status)

    def nothing_below_runs(self) -> None:
        subject: TransitionSubject = self.model
        if subject.running_below:
            raise InstanceRunning(
                f"cannot archive {subject.id}: {len(subject.running_below)} instance(s) below "
                "it are ACTIVE or PAUSED; stop it first",
                id=subject.id, running=subject.running_below[:20])


def _compile() -> dict[tuple[InstanceStatus, str], InstanceStatus]:
    table = {}
    for state in InstanceLifecycle.states:
        for transition in state.transitions:
            for event in transition.events:
                table[InstanceStatus(state.value), str(event)] = InstanceStatus(
                    transition.target.value)
    return table


TRANSITIONS: dict[tuple[InstanceStatus, str], InstanceStatus] = _compile()
"""(status, event) -> new status, read off ``InstanceLifecycle``: the same edges, no guards."""


def allowed_events(status: InstanceStatus | str) -> list[str]:
    """The events the machine accepts from ``status``, in EVENTS order."""
    current = InstanceStatus(status)
    return [e for e in EVENTS if (current, e) in TRANSITIONS]


def mermaid_diagram() -> str:
    """The machine as a Mermaid state diagram (the docs embed it; a test keeps it true)."""
    lines = ["stateDiagram-v2", "    [*] --> CREATED"]
    for (source, event), target in TRANSITIONS.items():
        lines.append(f"    {source.value} --> {target.value}: {event}")
    lines.append("    ARCHIVED --> [*]")
    return "\n".join(lines)


def event_to(instance_id: str, current: InstanceStatus | str,
             target: InstanceStatus | str) -> str:
    """The event that moves ``current`` to ``target`` (each pair has at most one), or
    InvalidTransition naming what is allowed instead. No event leads to the same status."""
    current, target = InstanceStatus(current), InstanceStatus(target)
    for event in EVENTS:
        if TRANSITIONS.get((current, event)) is target:
            return event
    allowed = allowed_events(current)
    raise InvalidTransition(
        f"cannot move instance {instance_id} from {current.value} to {target.value}; "
        f"allowed now: {', '.join(allowed) or 'nothing (terminal)'}",
        id=instance_id, status=current.value, target_status=target.value,
        allowed_events=allowed)


def decide(subject: TransitionSubject, event: str) -> InstanceStatus:
    """Run ``event`` through a machine bound to ``subject``; its new status, or a typed error."""
    if event not in EVENTS:
        raise ValidationError(f"unknown event {event!r}", errors={
            "event": [f"must be one of {', '.join(EVENTS)}"]})
    machine = InstanceLifecycle(subject, state_field="status")
    try:
        machine.send(event)
    except TransitionNotAllowed:
        allowed = allowed_events(subject.status)
        raise InvalidTransition(
            f"cannot {event} instance {subject.id}: it is {subject.status}; allowed now: "
            f"{', '.join(allowed) or 'nothing (terminal)'}",
            id=subject.id, status=subject.status, event=event, allowed_events=allowed,
        ) from None
    return InstanceStatus(subject.status)


# -- results ------------------------------------------------------------------------------
@dataclass(slots=True)
class StatusChange:
    """One instance moved by one event; ``cause`` is the instance whose event caused it."""

    id: str
    event: str
    previous_status: InstanceStatus
    status: InstanceStatus
    cause: str | None = None


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


# -- hooks --------------------------------------------------------------------------------
@dataclass(slots=True)
class HookContext:
    """What a hook is told. ``instance`` is the stored state before the change (a map of
    properties for before-hooks; for on_create the planned instance)."""

    hook: str
    instance_id: str
    event: str
    from_status: str | None
    to_status: str | None
    actor: str | None
    reason: str | None
    cause: str | None
    at: datetime


Hook = Callable[[HookContext], None]


class HookRegistry:
    """Callables to run before and after each lifecycle event.

    A before-hook runs inside the transaction, after the change was validated and before it
    is written; raising vetoes it (nothing is written, the caller gets HookVetoed naming the
    hook). It may run more than once if the database asks for a retry, so keep it free of
    side effects it cannot repeat. An after-hook runs once, after commit; if it raises, the
    error is logged and the change stands.
    """

    def __init__(self) -> None:
        self._hooks: dict[tuple[str, str], list[Hook]] = {}

    def register(self, hook: str, fn: Hook, *, when: str = "after") -> Hook:
        if hook not in HOOKS:
            raise ValueError(f"unknown hook {hook!r}; one of {', '.join(HOOKS)}")
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        self._hooks.setdefault((when, hook), []).append(fn)
        return fn

    def before(self, hook: str) -> Callable[[Hook], Hook]:
        """Decorator: ``@hooks.before("on_start")``."""
        return lambda fn: self.register(hook, fn, when="before")

    def after(self, hook: str) -> Callable[[Hook], Hook]:
        """Decorator: ``@hooks.after("on_stop")``."""
        return lambda fn: self.register(hook, fn, when="after")

    def run_before(self, contexts: Iterable[HookContext]) -> None:
        for context in contexts:
            for fn in self._hooks.get(("before", context.hook), ()):
                try:
                    fn(context)
                except Exception as exc:
                    name = getattr(fn, "__qualname__", repr(fn))
                    raise HookVetoed(
                        f"before-hook {name} for {context.hook} vetoed the change to "
                        f"{context.instance_id}: {exc}",
                        hook=context.hook, hook_function=name, id=context.instance_id,
                    ) from exc

    def run_after(self, contexts: Iterable[HookContext]) -> None:
        for context in contexts:
            for fn in self._hooks.get(("after", context.hook), ()):
                try:
                    fn(context)
                except Exception:
                    log.exception("after-hook %s for %s on %s failed; the change stands",
                                  getattr(fn, "__qualname__", repr(fn)), context.hook,
                                  context.instance_id)

    def __bool__(self) -> bool:
        return bool(self._hooks)


def _hook_contexts(changes: Iterable[StatusChange], at: datetime, actor: str | None,
                   reason: str | None) -> list[HookContext]:
    return [HookContext(f"on_{c.event}", c.id, c.event, c.previous_status.value,
                        c.status.value, actor, reason, c.cause, at) for c in changes]


# -- the manager --------------------------------------------------------------------------
class InstanceLifecycleManager:
    """Validates and applies transitions, runs hooks, writes the audit trail."""

    def __init__(self, repository: InstanceRepository, hooks: HookRegistry | None = None
                 ) -> None:
        self.repository = repository
        self.hooks = hooks or HookRegistry()

    # create and delete go through here too, for their hooks
    def create(self, spec: InstanceSpec, actor: str | None = None) -> HopperInstance:
        def before(props: dict[str, Any]) -> None:
            self.hooks.run_before([HookContext("on_create", props["id"], "create", None,
                                               "CREATED", actor, None, None, utcnow())])

        instance = self.repository.create(spec, actor=actor, before_write=before)
        self.hooks.run_after([HookContext("on_create", instance.id, "create", None,
                                          "CREATED", actor, None, None, instance.created_at)])
        return instance

    def transition(self, instance_id: str, event: str, *, actor: str | None = None,
                   reason: str | None = None, expected_version: int | None = None
                   ) -> TransitionResult:
        """Apply ``event`` to an instance and its cascade, atomically."""
        def work(tx: ManagedTransaction) -> tuple[TransitionResult, list[StatusChange]]:
            return self._transition(tx, instance_id, event, actor, reason, expected_version)

        result, changes = self.repository.write(work)
        self._after_commit(changes, result.at, actor, reason)
        return result

    def _transition(self, tx: ManagedTransaction, instance_id: str, event: str,
                    actor: str | None, reason: str | None, expected_version: int | None
                    ) -> tuple[TransitionResult, list[StatusChange]]:
        row = lock_with_parent(tx, instance_id, expected_version)
        below = _Subtree(tx, instance_id) if event in ("stop", "pause", "resume", "archive") \
            else _Subtree.empty()
        subject = TransitionSubject(instance_id, row["status"], row["parent_status"],
                                    below.running())
        previous = InstanceStatus(row["status"])
        status = decide(subject, event)
        own = StatusChange(instance_id, event, previous, status)
        with gc_paused():  # a cascade can build tens of thousands of changes
            cascaded = below.cascade(event, instance_id, status)
            # Stop, pause and archive work bottom up (descendants first); resume top down.
            changes = [own, *cascaded] if event == "resume" else [*cascaded, own]
            changes += below.auto_archive(changes, {instance_id: row["instance_type"]})
        at = utcnow()
        if self.hooks:
            self.hooks.run_before(_hook_contexts(changes, at, actor, reason))
        instance = _write_changes(tx, changes, at, actor, reason, instance_id)
        assert instance is not None  # its lock is held: it is there
        result = TransitionResult(instance_id, event, previous, status, at,
                                  [c for c in changes if c is not own],
                                  self.repository._instance(instance))
        return result, changes

    def update(self, instance_id: str, *, name: str | None = None,
               config: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
               replace: bool = False, status: InstanceStatus | str | None = None,
               actor: str | None = None, reason: str | None = None,
               expected_version: int | None = None) -> HopperInstance:
        """Change fields and, with ``status``, move to that status by the one event that
        leads there, all in one transaction: both apply or neither does."""
        def work(tx: ManagedTransaction) -> tuple[dict[str, Any], list[StatusChange], datetime]:
            current = lock_with_parent(tx, instance_id, expected_version)
            event = event_to(instance_id, current["status"], status) if status else None
            update_fields(tx, current, name, config, metadata, replace, actor)
            changes: list[StatusChange] = []
            at = utcnow()
            if event is not None:
                result, changes = self._transition(tx, instance_id, event, actor, reason, None)
                at = result.at
            row = tx.run(QUERIES.get_instance.text, id=instance_id).single()
            assert row is not None
            return row["instance"], changes, at

        row, changes, at = self.repository.write(work)
        self._after_commit(changes, at, actor, reason)
        return self.repository._instance(row)

    def delete(self, instance_id: str, *, force: bool = False, actor: str | None = None,
               reason: str | None = None, expected_version: int | None = None
               ) -> DeleteResult:
        """Delete an instance's subtree; with ``force``, stop what runs in it first."""
        def work(tx: ManagedTransaction) -> tuple[DeleteResult, list[StatusChange]]:
            root = lock_with_parent(tx, instance_id, expected_version)
            stopped: list[StatusChange] = []
            if force:
                below = _Subtree(tx, instance_id)
                if InstanceStatus(root["status"]).is_running:
                    subject = TransitionSubject(instance_id, root["status"])
                    stopped.append(StatusChange(instance_id, "stop",
                                                InstanceStatus(root["status"]),
                                                decide(subject, "stop")))
                stopped += below.cascade("stop", instance_id, InstanceStatus.STOPPED)
            at = utcnow()
            self.hooks.run_before(_hook_contexts(stopped, at, actor, reason))
            _write_changes(tx, stopped, at, actor, reason)
            if self.hooks:
                self.hooks.run_before(self._delete_contexts(tx, instance_id, at, actor, reason))
            deleted = delete_subtree(tx, instance_id, None, actor, reason)
            return DeleteResult(instance_id, deleted, stopped), stopped

        result, stopped = self.repository.write(work)
        at = utcnow()
        self._after_commit(stopped, at, actor, reason)
        self.hooks.run_after([HookContext("on_delete", i, "delete", None, None, actor, reason,
                                          None if i == instance_id else instance_id, at)
                              for i in result.deleted])
        return result

    def _delete_contexts(self, tx: ManagedTransaction, instance_id: str, at: datetime,
                         actor: str | None, reason: str | None) -> list[HookContext]:
        ids = [instance_id, *(r["id"] for r in _Subtree(tx, instance_id).rows)]
        return [HookContext("on_delete", i, "delete", None, None, actor, reason,
                            None if i == instance_id else instance_id, at) for i in ids]

    def purge_archived(self, older_than: timedelta | None = None, actor: str | None = None
                       ) -> list[str]:
        """Delete ARCHIVED EPHEMERAL instances past their retention (or ``older_than``).

        Each instance's own ``retention`` config decides unless ``older_than`` is given;
        ``retention.purge_archived: false`` keeps an instance. History stays.
        """
        now = utcnow()
        cutoff = now - older_than if older_than is not None else now
        rows = self.repository._read_all(QUERIES.find_purgeable.text, cutoff=cutoff)
        purged: list[str] = []
        for row in rows:
            if row["id"] in purged or not _past_retention(row, now, older_than):
                continue
            try:
                purged += self.delete(row["id"], actor=actor, reason="purge").deleted
            except (InstanceRunning, NotFound):
                continue  # deleted meanwhile, or something under it runs: not purgeable now
        return purged

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
            self.hooks.run_after(_hook_contexts(changes, at, actor, reason))


def _past_retention(row: dict[str, Any], now: datetime, older_than: timedelta | None) -> bool:
    archived_at = datetime.fromisoformat(row["archived_at"])
    if older_than is not None:
        return bool(archived_at <= now - older_than)
    retention = json.loads(row["config"] or "{}").get("retention", {})
    if not retention.get("purge_archived", True):
        return False
    ttl = retention.get("archived_ttl_seconds")
    return ttl is not None and bool(archived_at <= now - timedelta(seconds=ttl))


_STAMPED = {"start": "started", "stop": "stopped", "archive": "archived"}
"""The events that set a timestamp, and the row flag that says so."""


def _write_changes(tx: ManagedTransaction, changes: list[StatusChange], at: datetime,
                   actor: str | None, reason: str | None, instance_id: str | None = None
                   ) -> dict[str, Any] | None:
    """Write ``changes`` and their audit events in one statement; returns the instance
    ``instance_id`` as it is afterwards (None without changes)."""
    if not changes:
        return None
    with gc_paused():
        events, rows = _change_rows(changes, at, actor, reason)
    record = tx.run(QUERIES.apply_status_changes.text, count=len(events),
                    rows=list(rows.values()), now=at, id=instance_id).single(strict=True)
    for offset, event in enumerate(events, 1):
        event["seq"] = record["base"] + offset
    record_appended(events)
    instance: dict[str, Any] | None = record["instance"]
    return instance


def _change_rows(changes: list[StatusChange], at: datetime, actor: str | None,
                 reason: str | None
                 ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The audit events of ``changes``, in order, and one write row per instance."""
    events = [new_event(c.id, c.event, c.previous_status.value, c.status.value, at,
                        actor=actor, reason=reason, cause=c.cause) for c in changes]
    rows: dict[str, dict[str, Any]] = {}
    for offset, (change, event) in enumerate(zip(changes, events, strict=True), 1):
        row = rows.get(change.id)
        if row is None:
            row = rows[change.id] = {"id": change.id, "writes": 0, "started": False,
                                     "stopped": False, "archived": False, "events": []}
        row["status"] = change.status.value
        # paused_by remembers which instance's pause cascaded here, so its resume undoes
        # exactly that; any other move forgets it (null removes the property).
        row["paused_by"] = change.cause if change.event == "pause" else None
        row["writes"] += 1
        if change.event in _STAMPED:
            row[_STAMPED[change.event]] = True
        row["events"].append({"props": stored_event(event), "offset": offset})
    return events, rows


class _Subtree:
    """The locked descendants of an instance (parents before children) and the cascades."""

    def __init__(self, tx: ManagedTransaction | None, root_id: str) -> None:
        self.root_id = root_id
        self.rows: list[dict[str, Any]] = []
        if tx is not None:
            record = tx.run(QUERIES.lock_subtree_for_cascade.text, id=root_id).single()
            self.rows = record["instances"] if record else []

    @classmethod
    def empty(cls) -> _Subtree:
        return cls(None, "")

    def running(self) -> list[str]:
        return [r["id"] for r in self.rows if InstanceStatus(r["status"]).is_running]

    def cascade(self, event: str, root_id: str, root_status: InstanceStatus
                ) -> list[StatusChange]:
        """The changes ``event`` on the root causes below it (PRODUCT.md, "Cascade")."""
        if event == "stop":
            return self._move(reversed(self.rows), "stop", root_id, lambda s: s.is_running)
        if event == "pause":
            return self._move(reversed(self.rows), "pause", root_id,
                              lambda s: s is InstanceStatus.ACTIVE)
        if event == "archive":
            return self._move(reversed(self.rows), "archive", root_id,
                              lambda s: s is not InstanceStatus.ARCHIVED)
        if event == "resume":
            return self._resume(root_id, root_status)
        return []

    def _move(self, rows: Iterable[dict[str, Any]], event: str, cause: str,
              wanted: Callable[[InstanceStatus], bool]) -> list[StatusChange]:
        changes = []
        for row in rows:
            status = InstanceStatus(row["status"])
            if wanted(status):
                target = TRANSITIONS[status, event]
                changes.append(StatusChange(row["id"], event, status, target, cause))
                row["status"] = target.value
        return changes

    def _resume(self, root_id: str, root_status: InstanceStatus) -> list[StatusChange]:
        status_of = {root_id: root_status.value}
        changes = []
        for row in self.rows:  # parents first: a child resumes only under an ACTIVE parent
            status_of[row["id"]] = row["status"]
            if (row["status"] == InstanceStatus.PAUSED.value and row.get("paused_by") == root_id
                    and status_of.get(row["parent_id"]) == InstanceStatus.ACTIVE.value):
                target = TRANSITIONS[InstanceStatus.PAUSED, "resume"]
                changes.append(StatusChange(row["id"], "resume", InstanceStatus.PAUSED, target,
                                            root_id))
                row["status"] = status_of[row["id"]] = target.value
        return changes

    def auto_archive(self, changes: list[StatusChange], root_type: dict[str, str]
                     ) -> list[StatusChange]:
        """EPHEMERAL instances that just stopped are archived at once, with their subtree."""
        types = {r["id"]: r["instance_type"] for r in self.rows} | root_type
        stopped = [c.id for c in changes if c.event == "stop"
                   and types.get(c.id) == InstanceType.EPHEMERAL.value]
        if not stopped:
            return []
        status_of = {c.id: c.status.value for c in changes}
        status_of |= {r["id"]: r["status"] for r in self.rows}
        children: dict[str | None, list[str]] = {}
        for row in self.rows:
            children.setdefault(row["parent_id"], []).append(row["id"])
        depth = {r["id"]: r["depth"] for r in self.rows}
        archived: list[StatusChange] = []
        for top in sorted(stopped, key=lambda i: depth.get(i, -1)):  # topmost first
            if status_of[top] == InstanceStatus.ARCHIVED.value:
                continue
            order = [top]
            for node in order:  # breadth first: the subtree of `top`, parents first
                order.extend(children.get(node, []))
            for node in reversed(order):
                status = InstanceStatus(status_of[node])
                if status is InstanceStatus.ARCHIVED or status.is_running:
                    continue
                target = TRANSITIONS[status, "archive"]
                archived.append(StatusChange(node, "archive", status, target, top))
                status_of[node] = target.value
        return archived
