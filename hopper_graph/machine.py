"""The state machine: which event moves which status where, and the guards.

``InstanceLifecycle`` (python-statemachine) is the single definition of the lifecycle: start
and resume need an ACTIVE parent, archive needs nothing below to be running. The transition
a caller asks for runs through a machine bound to the instance as it is stored under its
write lock (:func:`decide`), so its validators raise the library's typed errors. A cascade
moves many instances by the same few edges; it looks them up in ``TRANSITIONS``, the table
compiled from the same machine class, because running a machine per instance costs ~0.3 ms
and a cascade may touch ten thousand. Nothing here reads or writes the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from hopper_graph import rules
from hopper_graph.enums import InstanceStatus
from hopper_graph.errors import (
    InstanceRunning,
    InvalidTransition,
    ParentNotActive,
    ValidationError,
)

EVENTS = ("start", "pause", "resume", "stop", "archive")


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



@dataclass(slots=True)
class StatusChange:
    """One instance moved by one event; ``cause`` is the instance whose event caused it."""

    id: str
    event: str
    previous_status: InstanceStatus
    status: InstanceStatus
    cause: str | None = None
