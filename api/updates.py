"""PATCH /instances/{id}: field changes and a status change, each through the library.

``status`` names where the instance should go; the lifecycle event that leads there from
the current status is looked up in the library's transition table (ACTIVE from PAUSED is
``resume``, from CREATED or STOPPED ``start``). No event leads from a status to itself, so
asking for the current status is an invalid transition like any other (409).

The library has no call that changes fields and status in one transaction, so this makes
two. The event is checked against the transition table first, and the status change is
pinned to the version the field change produced: if anything else touched the instance in
between it is refused, and only a failing guard (e.g. the parent is not ACTIVE) can leave
the field change applied without the status change.
"""

from __future__ import annotations

from typing import Any

from hopper_graph import (
    ConcurrentModification,
    HopperInstance,
    InstanceManager,
    InstanceStatus,
    InvalidTransition,
)
from hopper_graph.lifecycle import EVENTS, TRANSITIONS, allowed_events

FIELDS = ("name", "config", "metadata")


def event_for(instance_id: str, current: InstanceStatus, target: InstanceStatus) -> str:
    """The lifecycle event that moves ``current`` to ``target``, or InvalidTransition."""
    for event in EVENTS:
        if TRANSITIONS.get((current, event)) is target:
            return event
    allowed = allowed_events(current)
    raise InvalidTransition(
        f"cannot move instance {instance_id} from {current.value} to {target.value}; "
        f"allowed now: {', '.join(allowed) or 'nothing (terminal)'}",
        id=instance_id, status=current.value, target_status=target.value,
        allowed_events=allowed)


def apply_update(manager: InstanceManager, instance_id: str, changes: dict[str, Any],
                 version: int | None, actor: str | None) -> HopperInstance:
    actor = changes.get("actor") or actor
    fields = {k: changes[k] for k in FIELDS if k in changes}
    event = None
    if "status" in changes:
        current = manager.get(instance_id)
        if version is not None and version != current.version:
            raise ConcurrentModification(
                f"instance {instance_id} is at version {current.version}, not {version}",
                id=instance_id, version=current.version, expected_version=version)
        event = event_for(instance_id, current.status, changes["status"])
        version = current.version
    instance = None
    if fields:
        instance = manager.update(instance_id, replace=changes["replace"], actor=actor,
                                  expected_version=version, **fields)
        version = instance.version
    if event is None:
        assert instance is not None  # the schema asks for at least one change
        return instance
    return manager.transition(instance_id, event, actor=actor, reason=changes.get("reason"),
                              expected_version=version).instance
