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
together or not at all. A change without a subtree is one conditional statement (one round
trip); a cascade locks top down (parent, instance, then the subtree), so two racing
transitions serialise and the second sees the first's result. Before-hooks run before the
write, holding no lock, on a plan the write then checks.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from neo4j import ManagedTransaction
from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from hopper_graph import audit, rules
from hopper_graph.audit import new_event, stored_event
from hopper_graph.enums import InstanceStatus, InstanceType
from hopper_graph.errors import (
    ConcurrentModification,
    DuplicateName,
    HookTimedOut,
    HookVetoed,
    InstanceRunning,
    InvalidTransition,
    ParentNotActive,
    ValidationError,
)
from hopper_graph.gcpause import gc_paused
from hopper_graph.models import HopperInstance, InstanceSpec
from hopper_graph.queries import QUERIES
from hopper_graph.repository import (
    WRITE_ATTEMPTS,
    InstanceRepository,
    check_version,
    delete_subtree,
    lock_with_parent,
    not_found,
    restore_in_progress,
    update_fields,
    utcnow,
)
from hopper_graph.rules import Expected

log = logging.getLogger("hopper_graph.lifecycle")
P = TypeVar("P")
R = TypeVar("R")

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
    parent_id: str | None = None


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
                f"instance {subject.id} cannot become ACTIVE: its parent {subject.parent_id} "
                f"is {subject.parent_status}, not ACTIVE; start or resume the parent first",
                id=subject.id, status=subject.status, parent_id=subject.parent_id,
                parent_status=subject.parent_status)

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


EDGES: dict[str, dict[str, str]] = {
    event: {source.value: target.value for (source, name), target in TRANSITIONS.items()
            if name == event} for event in EVENTS}
"""event -> {status it leaves: status it reaches}: what a one-statement transition sends."""


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
            "event": [f"must be {rules.one_of(EVENTS)}"]})
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
DEFAULT_HOOK_TIMEOUT = 30.0


class HookRegistry:
    """Callables to run before and after each lifecycle event.

    A before-hook runs before the change is written, outside any transaction and holding
    no lock, after the change was planned from the stored state; raising vetoes it
    (nothing is written, the caller gets HookVetoed naming the hook), and so does running
    longer than ``timeout`` seconds (HookTimedOut). The write then checks that the state
    the plan came from still holds; if not, the change is planned again and the hooks run
    again, so keep them free of side effects they cannot repeat. A change that is not
    written reaches no after-hook. An after-hook runs once, after commit; if it raises, the
    error is logged and the change stands.
    """

    def __init__(self, timeout: float | None = DEFAULT_HOOK_TIMEOUT) -> None:
        self._hooks: dict[tuple[str, str], list[tuple[Hook, float | None]]] = {}
        self.timeout = timeout
        """Seconds a before-hook may run (None: no limit); ``register`` can set its own."""

    def register(self, hook: str, fn: Hook, *, when: str = "after",
                 timeout: float | None = None) -> Hook:
        if hook not in HOOKS:
            raise ValueError(f"unknown hook {hook!r}; one of {', '.join(HOOKS)}")
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        self._hooks.setdefault((when, hook), []).append((fn, timeout))
        return fn

    def before(self, hook: str, timeout: float | None = None) -> Callable[[Hook], Hook]:
        """Decorator: ``@hooks.before("on_start")``."""
        return lambda fn: self.register(hook, fn, when="before", timeout=timeout)

    def after(self, hook: str) -> Callable[[Hook], Hook]:
        """Decorator: ``@hooks.after("on_stop")``."""
        return lambda fn: self.register(hook, fn, when="after")

    def has_before(self, *hooks: str) -> bool:
        return any(("before", hook) in self._hooks for hook in hooks)

    def run_before(self, contexts: Iterable[HookContext]) -> None:
        for context in contexts:
            for fn, timeout in self._hooks.get(("before", context.hook), ()):
                self._run_one(fn, context, self.timeout if timeout is None else timeout)

    @staticmethod
    def _run_one(fn: Hook, context: HookContext, timeout: float | None) -> None:
        name = getattr(fn, "__qualname__", repr(fn))
        try:
            _call_within(fn, context, timeout)
        except _Overran:
            raise HookTimedOut(
                f"before-hook {name} for {context.hook} ran past its {timeout:g} s limit and "
                f"vetoed the change to {context.instance_id}",
                hook=context.hook, hook_function=name, id=context.instance_id,
                timeout=timeout) from None
        except Exception as exc:
            raise HookVetoed(
                f"before-hook {name} for {context.hook} vetoed the change to "
                f"{context.instance_id}: {exc}",
                hook=context.hook, hook_function=name, id=context.instance_id,
            ) from exc

    def run_after(self, contexts: Iterable[HookContext]) -> None:
        for context in contexts:
            for fn, _ in self._hooks.get(("after", context.hook), ()):
                try:
                    fn(context)
                except Exception:
                    log.exception("after-hook %s for %s on %s failed; the change stands",
                                  getattr(fn, "__qualname__", repr(fn)), context.hook,
                                  context.instance_id)

    def __bool__(self) -> bool:
        return bool(self._hooks)


class _Overran(Exception):
    pass


def _call_within(fn: Hook, context: HookContext, timeout: float | None) -> None:
    """``fn(context)``, given up on after ``timeout`` seconds. Python cannot stop a thread,
    so an overrunning hook goes on in a daemon thread and its outcome is ignored."""
    if timeout is None:
        fn(context)
        return
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fn(context)
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,),
                              name=f"hook-{context.hook}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _Overran
    if outcome:
        raise outcome[0]


def _hook_contexts(changes: Iterable[StatusChange], at: datetime, actor: str | None,
                   reason: str | None) -> list[HookContext]:
    return [HookContext(f"on_{c.event}", c.id, c.event, c.previous_status.value,
                        c.status.value, actor, reason, c.cause, at) for c in changes]


def _create_context(instance_id: str, actor: str | None, at: datetime) -> HookContext:
    return HookContext("on_create", instance_id, "create", None, "CREATED", actor, None, None,
                       at)


def delete_contexts(ids: Iterable[str], root_id: str | None, at: datetime,
                    actor: str | None, reason: str | None) -> list[HookContext]:
    """The on_delete contexts of ``ids``; each names ``root_id`` as its cause but the root
    itself (None: no cause)."""
    return [HookContext("on_delete", i, "delete", None, None, actor, reason,
                        None if i == root_id else root_id, at) for i in ids]


class _Stale(Exception):
    """The state a plan (and the before-hooks) saw changed before the write: plan again."""


_HOOKS_OF = {event: (f"on_{event}", "on_archive") if event == "stop" else (f"on_{event}",)
             for event in EVENTS}
"""The hooks an event's change of the instance itself can fire (a stop may archive)."""
_NEEDS_ACTIVE_PARENT = {"start", "resume"}


# -- the manager --------------------------------------------------------------------------
class InstanceLifecycleManager:
    """Validates and applies transitions, runs hooks, writes the audit trail."""

    def __init__(self, repository: InstanceRepository, hooks: HookRegistry | None = None
                 ) -> None:
        self.repository = repository
        self.hooks = hooks if hooks is not None else HookRegistry()

    # create and delete go through here too, for their hooks
    def create(self, spec: InstanceSpec, actor: str | None = None) -> HopperInstance:
        def before(props: dict[str, Any]) -> None:
            self.hooks.run_before([_create_context(props["id"], actor, utcnow())])

        instance = self.repository.create(
            spec, actor=actor, before_write=before if self.hooks.has_before("on_create")
            else None)
        self.hooks.run_after([_create_context(instance.id, actor, instance.created_at)])
        return instance

    def bulk_create(self, specs: Sequence[InstanceSpec], actor: str | None = None
                    ) -> list[str]:
        """Create a whole hierarchy in one transaction. The on_create before-hooks see each
        instance (in order, ids assigned) before the transaction; any veto creates
        nothing. The after-hooks see each one after commit."""
        def before(checked: list[InstanceSpec]) -> None:
            at = utcnow()
            self.hooks.run_before([_create_context(str(s.id), actor, at) for s in checked])

        ids = self.repository.bulk_create(
            specs, actor=actor, before_write=before if self.hooks.has_before("on_create")
            else None)
        if self.hooks:
            at = utcnow()
            self.hooks.run_after([_create_context(i, actor, at) for i in ids])
        return ids

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
            result, changes = self._planned(instance_id, event, actor, reason,
                                            expected_version)
        else:
            done = self._one_statement(instance_id, event, actor, reason, expected_version)
            if done is None:  # a cascade: lock the subtree
                done = self.repository.write(self._transition, instance_id, event, actor,
                                             reason, expected_version, None)
            result, changes = done
        self._after_commit(changes, result.at, actor, reason)
        return result

    def _one_statement(self, instance_id: str, event: str, actor: str | None,
                       reason: str | None, expected_version: Expected
                       ) -> tuple[TransitionResult, list[StatusChange]] | None:
        """The transition as one conditional statement; None when it has a subtree to
        cascade to. A refusal becomes the error the state machine raises for it."""
        at = utcnow()
        ids = [str(uuid.uuid4()), str(uuid.uuid4())]
        audit.check_event_text(actor, reason)
        rows = self.repository.graph.write_rows(
            QUERIES.transition_instance.text, id=instance_id, event=event, edges=EDGES[event],
            expected_version=rules.expected_list(expected_version), needs_active_parent=event in
            _NEEDS_ACTIVE_PARENT, cascades=event != "start", now=at, event_ids=ids,
            actor=actor, reason=reason)
        if not rows:
            raise not_found(instance_id)
        row = rows[0]
        if row["restoring"]:
            raise restore_in_progress(instance_id)
        if row["cascade"]:
            return None
        check_version({"id": instance_id, "version": row["version"]}, expected_version)
        subject = TransitionSubject(instance_id, row["before"], row["parent_status"],
                                    parent_id=row["instance"].get("parent_id"))
        previous = InstanceStatus(row["before"])
        status = decide(subject, event)  # raises what the statement refused
        assert row["applies"], "the statement and the machine disagree"
        own = StatusChange(instance_id, event, previous, status)
        changes = [own]
        instance = self.repository.instance(row["instance"])
        if instance.status is not status:  # a stopped EPHEMERAL, archived with it
            changes.append(StatusChange(instance_id, "archive", status, instance.status,
                                        instance_id))
        events = _events_of(changes, ids, at, actor, reason)
        self.repository.committed(events)
        return (TransitionResult(instance_id, event, previous, status, at, changes[1:],
                                 instance), changes)

    def _planned(self, instance_id: str, event: str, actor: str | None, reason: str | None,
                 expected_version: Expected
                 ) -> tuple[TransitionResult, list[StatusChange]]:
        """The transition with its before-hooks (see :meth:`_hooked`)."""
        def plan() -> tuple[TransitionResult, list[StatusChange]]:
            return self.repository.graph.write(
                self._transition, instance_id, event, actor, reason, expected_version, False)

        return self._hooked(
            instance_id, True, plan,
            lambda p: _hook_contexts(p[1], p[0].at, actor, reason),
            lambda p: self.repository.write(self._transition, instance_id, event, actor,
                                            reason, expected_version, p[1]))

    def _hooked(self, instance_id: str, hooked: bool, plan: Callable[[], P],
                contexts: Callable[[P], list[HookContext]], write: Callable[[Any], R]) -> R:
        """Plan the change from a plain read, run its before-hooks holding no lock, then
        ``write(plan)``, which raises _Stale when the stored state no longer gives the
        plan: then plan again, at most WRITE_ATTEMPTS times. Without hooks, just write."""
        for _ in range(WRITE_ATTEMPTS if hooked else 1):
            planned = None
            if hooked:
                planned = plan()
                self.hooks.run_before(contexts(planned))
            try:
                return write(planned)
            except _Stale:
                continue
        raise ConcurrentModification(
            f"instance {instance_id} kept changing while its hooks ran; try again",
            id=instance_id)

    def _transition(self, tx: ManagedTransaction, instance_id: str, event: str,
                    actor: str | None, reason: str | None, expected_version: Expected,
                    planned: list[StatusChange] | bool | None
                    ) -> tuple[TransitionResult, list[StatusChange]]:
        """Decide the change and its cascade from the stored state, and write it. With
        ``planned=False`` nothing is locked or written (a plan for the hooks); with a list,
        the state must still give exactly those changes (else _Stale)."""
        lock = planned is not False
        row = lock_with_parent(tx, instance_id, expected_version, lock=lock)
        below = _Subtree(tx, instance_id, lock) if event in ("stop", "pause", "resume",
                                                             "archive") else _Subtree.empty()
        subject = TransitionSubject(instance_id, row["status"], row["parent_status"],
                                    below.running(), row.get("parent_id"))
        previous = InstanceStatus(row["status"])
        status = decide(subject, event)
        own = StatusChange(instance_id, event, previous, status)
        with gc_paused():  # a cascade can build tens of thousands of changes
            cascaded = below.cascade(event, instance_id, status)
            # Stop, pause and archive work bottom up (descendants first); resume top down.
            changes = [own, *cascaded] if event == "resume" else [*cascaded, own]
            changes += below.auto_archive(changes, {instance_id: row["instance_type"]},
                                          instance_id)
        at = utcnow()
        if isinstance(planned, list) and planned != changes:
            raise _Stale
        instance = row if planned is False else _write_changes(tx, changes, at, actor, reason,
                                                               instance_id)
        assert instance is not None  # its lock is held: it is there
        result = TransitionResult(instance_id, event, previous, status, at,
                                  [c for c in changes if c is not own],
                                  self.repository.instance(instance))
        return result, changes

    def update(self, instance_id: str, *, name: str | None = None,
               config: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
               replace: bool = False, status: InstanceStatus | str | None = None,
               actor: str | None = None, reason: str | None = None,
               expected_version: Expected = None) -> HopperInstance:
        """Change fields and, with ``status``, move to that status by the one event that
        leads there, all in one transaction: both apply or neither does."""
        if status is None:
            return self.repository.update(instance_id, name=name, config=config,
                                          metadata=metadata, replace=replace,
                                          expected_version=expected_version, actor=actor)

        def work(tx: ManagedTransaction, planned: tuple[int, list[StatusChange]] | bool | None
                 ) -> tuple[dict[str, Any], list[StatusChange], datetime]:
            lock = planned is not False
            current = lock_with_parent(tx, instance_id, expected_version, lock=lock)
            event = event_to(instance_id, current["status"], status)
            if not lock:
                result, changes = self._transition(tx, instance_id, event, actor, reason,
                                                   None, False)
                return current, changes, result.at
            if isinstance(planned, tuple) and planned[0] != current["version"]:
                raise _Stale
            update_fields(tx, current, name, config, metadata, replace, actor)
            result, changes = self._transition(tx, instance_id, event, actor, reason, None,
                                               planned[1] if isinstance(planned, tuple)
                                               else None)
            return _stored_instance(tx, instance_id), changes, result.at

        def plan() -> tuple[int, list[StatusChange], datetime]:
            current, changes, at = self.repository.graph.write(work, False)
            return current["version"], changes, at

        try:
            row, changes, at = self._hooked(
                instance_id, self.hooks.has_before(*(f"on_{e}" for e in EVENTS)), plan,
                lambda p: _hook_contexts(p[1], p[2], actor, reason),
                lambda p: self.repository.write(work, p[:2] if p else None))
        except DuplicateName:  # the constraint names nobody: say who holds the name
            scope = self.repository.get(instance_id).scope
            raise self.repository.taken_name(str(name), scope) from None
        self._after_commit(changes, at, actor, reason)
        return self.repository.instance(row)

    def delete(self, instance_id: str, *, force: bool = False, actor: str | None = None,
               reason: str | None = None, expected_version: Expected = None
               ) -> DeleteResult:
        """Delete an instance's subtree; with ``force``, stop what runs in it first
        (descendants first, as a stop cascades). Before-hooks see the plan from a plain
        read; the write checks it still holds."""
        def plan() -> DeleteResult:
            return self.repository.graph.write(
                self._delete, instance_id, force, actor, reason, expected_version, False)

        def contexts(plan: DeleteResult) -> list[HookContext]:
            at = utcnow()
            return [*_hook_contexts(plan.stopped, at, actor, reason),
                    *delete_contexts(plan.deleted, instance_id, at, actor, reason)]

        result: DeleteResult = self._hooked(
            instance_id, self.hooks.has_before("on_delete", "on_stop", "on_archive"), plan,
            contexts, lambda p: self.repository.write(self._delete, instance_id, force,
                                                      actor, reason, expected_version, p))
        at = utcnow()
        self._after_commit(result.stopped, at, actor, reason)
        self.hooks.run_after(delete_contexts(result.deleted, instance_id, at, actor, reason))
        return result

    def _delete(self, tx: ManagedTransaction, instance_id: str, force: bool,
                actor: str | None, reason: str | None, expected_version: Expected,
                planned: DeleteResult | bool | None) -> DeleteResult:
        """With ``planned=False`` only plan (read, nothing locked); with a plan, the state
        must still give the same one (else _Stale)."""
        lock = planned is not False
        root = lock_with_parent(tx, instance_id, expected_version, lock=lock)
        below = _Subtree(tx, instance_id, lock)
        stopped: list[StatusChange] = []
        if force:
            stopped = below.cascade("stop", instance_id, InstanceStatus.STOPPED)
            if InstanceStatus(root["status"]).is_running:
                subject = TransitionSubject(instance_id, root["status"])
                stopped.append(StatusChange(instance_id, "stop",
                                            InstanceStatus(root["status"]),
                                            decide(subject, "stop")))
        ids = [*(r["id"] for r in reversed(below.rows)), instance_id]  # deepest first
        plan = DeleteResult(instance_id, ids, stopped)
        if planned is False:
            return plan
        if isinstance(planned, DeleteResult) and (planned.deleted, planned.stopped) != (
                plan.deleted, plan.stopped):
            raise _Stale
        _write_changes(tx, stopped, utcnow(), actor, reason)
        deleted = delete_subtree(tx, instance_id, actor, reason)
        return DeleteResult(instance_id, deleted, stopped)

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


def _stored_instance(tx: ManagedTransaction, instance_id: str) -> dict[str, Any]:
    row = tx.run(QUERIES.get_instance.text, id=instance_id).single()
    assert row is not None  # its lock is held
    stored: dict[str, Any] = row["instance"]
    return stored


_STAMPED = {"start": "started", "stop": "stopped", "archive": "archived"}
"""The events that set a timestamp, and the row flag that says so."""


def _events_of(changes: list[StatusChange], ids: list[str], at: datetime, actor: str | None,
               reason: str | None) -> list[dict[str, Any]]:
    """The events ``transition_instance`` wrote for ``changes``, as the subscribers see them."""
    events = []
    for offset, (change, event_id) in enumerate(zip(changes, ids, strict=False), 1):
        event = new_event(change.id, change.event, change.previous_status.value,
                          change.status.value, at, actor=actor, reason=reason,
                          cause=change.cause, offset=offset)
        event["id"] = event_id
        events.append(event)
    return events


def _write_changes(tx: ManagedTransaction, changes: list[StatusChange], at: datetime,
                   actor: str | None, reason: str | None, instance_id: str | None = None
                   ) -> dict[str, Any] | None:
    """Write ``changes`` and their audit events in one statement; returns the instance
    ``instance_id`` as it is afterwards (None without changes)."""
    if not changes:
        return None
    with gc_paused():
        events, rows = _change_rows(changes, at, actor, reason)
    record = tx.run(QUERIES.apply_status_changes.text, rows=list(rows.values()), now=at,
                    id=instance_id).single(strict=True)
    audit.record_written(events)
    instance: dict[str, Any] | None = record["instance"]
    return instance


def _change_rows(changes: list[StatusChange], at: datetime, actor: str | None,
                 reason: str | None
                 ) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The audit events of ``changes``, in order, and one write row per instance."""
    events = [new_event(c.id, c.event, c.previous_status.value, c.status.value, at,
                        actor=actor, reason=reason, cause=c.cause, offset=offset)
              for offset, c in enumerate(changes, 1)]
    rows: dict[str, dict[str, Any]] = {}
    for change, event in zip(changes, events, strict=True):
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
        row["events"].append(stored_event(event))
    return events, rows


class _Subtree:
    """The locked descendants of an instance (parents before children) and the cascades."""

    def __init__(self, tx: ManagedTransaction | None, root_id: str, lock: bool = True) -> None:
        self.root_id = root_id
        self.rows: list[dict[str, Any]] = []
        if tx is not None:
            record = tx.run(QUERIES.lock_subtree_for_cascade.text, id=root_id,
                            lock=lock).single()
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

    def auto_archive(self, changes: list[StatusChange], root_type: dict[str, str],
                     cause: str) -> list[StatusChange]:
        """EPHEMERAL instances that just stopped are archived at once, with their subtree;
        ``cause`` is the instance the event was sent to."""
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
                archived.append(StatusChange(node, "archive", status, target, cause))
                status_of[node] = target.value
        return archived
