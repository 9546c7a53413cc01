"""Rows of the named queries made into model objects: instances and audit events.

Two shapes arrive: a one-instance query answers a ``{{instance_map(n)}}`` map
(:func:`instance_from_row`), a many-instance query one record of parallel lists, one per
column of :data:`INSTANCE_COLUMNS` (:func:`instances_from_columns`). Events come the same
two ways. Timestamps arrive as ISO-8601 text (see :func:`_native`).

These run on every read, 100,000 times on a large tree: each field is written out rather
than looped over, and ``tests/unit/test_fields.py`` holds them to ``INSTANCE_FIELDS``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hopper_graph.enums import HopperScope, InstanceStatus, InstanceType
from hopper_graph.fields import STORED_FIELDS
from hopper_graph.gcpause import gc_paused
from hopper_graph.models import HierarchyReader, HopperInstance, InstanceEvent


def _native(value: Any) -> datetime | None:
    """A timezone-aware datetime from what a query returned.

    The named queries return stored DATETIMEs as ISO strings (``toString(n.created_at)``):
    the driver's own DATETIME hydration costs ~200 us a value, parsing the string ~0.3 us.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    to_native = getattr(value, "to_native", None)
    return to_native() if to_native else value


# Plain dict lookups: calling the enum class costs ~1 us, and a tree of 100,000 makes 300,000.
_SCOPES = {s.value: s for s in HopperScope}
_STATUSES = {s.value: s for s in InstanceStatus}
_TYPES = {t.value: t for t in InstanceType}


def instance_from_row(row: dict[str, Any], repository: HierarchyReader | None = None
                      ) -> HopperInstance:
    """Build a HopperInstance from a ``n {.*}`` map projection (see the named queries)."""
    return HopperInstance.from_stored(
        row["id"], row["name"], _SCOPES[row["scope"]], _STATUSES[row["status"]],
        _TYPES[row["instance_type"]], row.get("parent_id"), row.get("project_id"),
        row.get("config"), row.get("config_set"), row.get("metadata"), row.get("labels"),
        row["version"],
        row.get("depth"), _native(row["created_at"]),  # type: ignore[arg-type]
        _native(row["updated_at"]),  # type: ignore[arg-type]
        _native(row.get("started_at")), _native(row.get("stopped_at")),
        _native(row.get("archived_at")), _native(row.get("heartbeat_at")), repository)


INSTANCE_COLUMNS = STORED_FIELDS
"""The columns of a many-instance query, in this order: each a list with one entry per
instance (timestamps as ISO strings). One record of parallel lists is several times cheaper
to produce in Neo4j and to read in the driver than a record or a map per instance."""


def instances_from_columns(row: dict[str, Any], repository: HierarchyReader | None = None
                           ) -> list[HopperInstance]:
    """HopperInstances from a record of ``INSTANCE_COLUMNS``; an instance deleted by a
    concurrent transaction between match and read (its id reads as null, or '' from
    ``instance_columns_of_rows``) is left out. '' reads as null in every column."""
    with gc_paused():
        return _instances_from_columns(row, repository)


def _instances_from_columns(row: dict[str, Any], repository: HierarchyReader | None
                            ) -> list[HopperInstance]:
    build, parse = HopperInstance.from_stored, datetime.fromisoformat
    scopes, statuses, types = _SCOPES, _STATUSES, _TYPES
    return [
        build(id_, name, scopes[scope], statuses[status], types[kind], parent_id or None,
              project_id or None, config, config_set, metadata, labels, version, depth,
              parse(created), parse(updated), parse(started) if started else None,
              parse(stopped) if stopped else None, parse(archived) if archived else None,
              parse(heartbeat) if heartbeat else None, repository)
        for (id_, name, scope, status, kind, parent_id, project_id, config, config_set,
             metadata, labels, version, depth, created, updated, started, stopped, archived,
             heartbeat) in zip(*(row[c] for c in INSTANCE_COLUMNS), strict=True)
        if id_
    ]


def event_from_row(row: dict[str, Any]) -> InstanceEvent:
    return InstanceEvent(
        id=row["id"], seq=row["seq"], instance_id=row["instance_id"], event=row["event"],
        from_status=InstanceStatus(row["from_status"]) if row.get("from_status") else None,
        to_status=InstanceStatus(row["to_status"]) if row.get("to_status") else None,
        actor=row.get("actor"), reason=row.get("reason"), cause=row.get("cause"),
        at=_native(row["at"]),  # type: ignore[arg-type]
        from_parent_id=row.get("from_parent_id"), to_parent_id=row.get("to_parent_id"),
    )


EVENT_COLUMNS = ("id", "seq", "instance_id", "event", "from_status", "to_status", "actor",
                 "reason", "cause", "at", "from_parent_id", "to_parent_id")
"""The columns of a many-event query: parallel lists, as ``INSTANCE_COLUMNS``."""


def events_from_columns(row: dict[str, Any]) -> list[InstanceEvent]:
    statuses, parse = _STATUSES, datetime.fromisoformat
    return [
        InstanceEvent(id_, seq, instance_id, event,
                      statuses[from_status] if from_status else None,
                      statuses[to_status] if to_status else None,
                      actor, reason, cause, parse(at), from_parent, to_parent)
        for (id_, seq, instance_id, event, from_status, to_status, actor, reason, cause,
             at, from_parent, to_parent) in zip(*(row[c] for c in EVENT_COLUMNS), strict=True)
    ]
