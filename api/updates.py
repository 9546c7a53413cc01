"""PATCH /instances/{id}: field changes and a status change in one library call.

``status`` names where the instance should go; the library moves it there by the one
lifecycle event that leads there from the current status (ACTIVE from PAUSED is
``resume``, from CREATED or STOPPED ``start``), in the same transaction as the field
changes: both apply or neither does. No event leads from a status to itself, so asking
for the current status is an invalid transition like any other (409).
"""

from __future__ import annotations

from typing import Any

from hopper_graph import HopperInstance, InstanceManager

FIELDS = ("name", "config", "metadata", "status", "reason")


def apply_update(manager: InstanceManager, instance_id: str, changes: dict[str, Any],
                 version: int | None, actor: str | None) -> HopperInstance:
    fields = {k: changes[k] for k in FIELDS if k in changes}
    return manager.update(instance_id, replace=changes.get("replace", False),
                          actor=changes.get("actor") or actor, expected_version=version,
                          **fields)
