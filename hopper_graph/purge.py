"""Purge: delete ARCHIVED EPHEMERAL instances past their retention, and say why each one
goes or stays.

STAND-IN. The library's purge (issue 11, items 1 and 2) replaces this module; it exists so
that the REST endpoint and the ``hopper-graph purge`` command can be written against the
agreed interface: ``PurgeItem``, ``PurgeReport`` and ``InstanceManager.purge``. The real
deletion here is still ``InstanceLifecycleManager.purge_archived``, with its known defect
(it deletes a purgeable instance's whole subtree).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hopper_graph.enums import InstanceStatus, InstanceType
from hopper_graph.models import HopperInstance
from hopper_graph.repository import utcnow

if TYPE_CHECKING:
    from hopper_graph.manager import InstanceManager

_PAGE = 1000


@dataclass(frozen=True, slots=True)
class PurgeItem:
    """One archived instance purge looked at, and why it goes or stays."""

    id: str
    name: str
    scope: str
    archived_at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class PurgeReport:
    dry_run: bool
    purged: list[PurgeItem]
    """What was purged; with ``dry_run``, what would be."""
    kept: list[PurgeItem]
    """Archived EPHEMERAL instances examined and kept, each with the reason."""


def purge(manager: InstanceManager, older_than: timedelta | None = None, *,
          dry_run: bool = False, actor: str | None = None) -> PurgeReport:
    now = utcnow()
    archived = {i.id: i for i in _archived(manager)}
    verdicts = {i.id: _verdict(i, now, older_than) for i in archived.values()
                if i.instance_type is InstanceType.EPHEMERAL}
    goes = [_item(archived[i], why) for i, (ok, why) in verdicts.items() if ok]
    stays = [_item(archived[i], why) for i, (ok, why) in verdicts.items() if not ok]
    if dry_run:
        return PurgeReport(True, goes, stays)
    deleted = manager.lifecycle.purge_archived(older_than, actor=actor)
    purged = [_item(archived[i], verdicts.get(i, (True, "deleted with its ancestor"))[1])
              for i in deleted if i in archived]
    return PurgeReport(False, purged, [k for k in stays if k.id not in set(deleted)])


def _archived(manager: InstanceManager) -> Iterator[HopperInstance]:
    offset = 0
    while True:
        page = manager.list(status=InstanceStatus.ARCHIVED, offset=offset, limit=_PAGE)
        yield from page.items
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return


def _verdict(instance: HopperInstance, now: datetime,
             older_than: timedelta | None) -> tuple[bool, str]:
    archived_at = instance.archived_at
    if archived_at is None:
        return False, "ARCHIVED without archived_at"
    stamp = archived_at.isoformat()
    if older_than is not None:
        if archived_at <= now - older_than:
            return True, f"archived {stamp}, older than {older_than}"
        return False, f"archived {stamp}, not older than {older_than}"
    retention = instance.config.get("retention", {})
    if not retention.get("purge_archived", True):
        return False, "retention.purge_archived is false"
    ttl = retention.get("archived_ttl_seconds")
    if ttl is None:
        return False, "no retention.archived_ttl_seconds"
    until = archived_at + timedelta(seconds=ttl)
    if until <= now:
        return True, f"archived {stamp}, past its {ttl}-second retention"
    return False, f"inside its retention period until {until.isoformat()}"


def _item(instance: HopperInstance, reason: str) -> PurgeItem:
    return PurgeItem(instance.id, instance.name, instance.scope.value, instance.archived_at,
                     reason)
