"""Transaction building blocks: one typed function per named write, run in a caller's
transaction.

The repository, the lifecycle manager, the cascade and the purge compose their writes from
these, so each lock order and each check is written once: a writer locks top down (the
parent, the instance, then its subtree), checks under the locks what it read, then writes,
with the audit events of the change in the same transaction (``audit``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from neo4j import ManagedTransaction

from hopper_graph import audit, labels, liens, rules
from hopper_graph.audit import append_events, new_event, stored_event
from hopper_graph.enums import InstanceStatus
from hopper_graph.errors import (
    ConcurrentModification,
    InstanceRunning,
    NotFound,
    RestoreInProgress,
)
from hopper_graph.gcpause import gc_paused
from hopper_graph.machine import StatusChange
from hopper_graph.queries import QUERIES
from hopper_graph.rules import Expected


def utcnow() -> datetime:
    """The time a write stamps (timezone-aware UTC)."""
    return datetime.now(UTC)


def not_found(instance_id: str) -> NotFound:
    return NotFound(f"no instance with id {instance_id}", id=instance_id)


def restore_in_progress(instance_id: str) -> RestoreInProgress:
    return RestoreInProgress(f"instance {instance_id} is being restored by an import; try "
                             "again when it has finished", id=instance_id)


def check_version(row: dict[str, Any], expected_version: Expected) -> None:
    """ConcurrentModification unless the instance ``row`` is at a version the caller
    pinned (any, one, or one of several)."""
    if not rules.version_matches(row["version"], expected_version):
        raise ConcurrentModification(
            f"instance {row['id']} is at version {row['version']}, not "
            f"{_versions_text(expected_version)}", id=row["id"], version=row["version"],
            expected_version=rules.expected_value(expected_version))


def _versions_text(expected: rules.Expected) -> str:
    value = rules.expected_value(expected)
    return " or ".join(map(str, value)) if isinstance(value, list) else str(value)


# -- locks ------------------------------------------------------------------------------------
def lock_with_parent(tx: ManagedTransaction, instance_id: str,
                     expected_version: Expected = None, lock: bool = True
                     ) -> dict[str, Any]:
    """Take the parent's write lock, then the instance's (top down, like every writer);
    with ``lock=False`` only read them. Returns the instance as stored, with
    ``parent_status`` added."""
    record = tx.run(QUERIES.lock_for_transition.text, id=instance_id, lock=lock).single()
    if record is None:
        raise not_found(instance_id)
    if record["restoring"]:
        raise restore_in_progress(instance_id)
    row: dict[str, Any] = dict(record["instance"], parent_status=record["parent_status"])
    check_version(row, expected_version)
    return row


def lock_subtree(tx: ManagedTransaction, instance_id: str) -> list[dict[str, Any]]:
    """Lock an instance and its subtree top down; rows deepest first (root last)."""
    rows = [r["instance"] for r in tx.run(QUERIES.lock_subtree.text, id=instance_id)]
    if not rows:
        raise not_found(instance_id)
    return rows


def lock_descendants(tx: ManagedTransaction, root_id: str, lock: bool = True
                     ) -> list[dict[str, Any]]:
    """Everything below ``root_id``, parents before children, with what a cascade needs of
    each; locked top down, or with ``lock=False`` only read."""
    record = tx.run(QUERIES.lock_subtree_for_cascade.text, id=root_id, lock=lock).single()
    return record["instances"] if record else []


def stored_instance(tx: ManagedTransaction, instance_id: str) -> dict[str, Any]:
    """A locked instance as it is stored now."""
    row = tx.run(QUERIES.get_instance.text, id=instance_id).single()
    assert row is not None  # its lock is held
    stored: dict[str, Any] = row["instance"]
    return stored


# -- writes -----------------------------------------------------------------------------------
def update_event(current: dict[str, Any], changes: dict[str, Any], at: datetime,
                 actor: str | None) -> dict[str, Any]:
    """The ``update`` audit event of field ``changes`` to the instance ``current``."""
    status = current["status"]
    changed = sorted(changes)
    if "labels" in changes:  # name the label keys that changed
        keys = labels.changed_keys(json.loads(current.get("labels") or "{}"),
                                   json.loads(changes["labels"]))
        changed[changed.index("labels")] = f"labels ({', '.join(keys)})"
    return new_event(current["id"], "update", status, status, at, actor=actor,
                     reason="changed " + ", ".join(changed))


def update_fields(tx: ManagedTransaction, current: dict[str, Any], name: str | None,
                  config: dict[str, Any] | None, metadata: dict[str, Any] | None,
                  replace: bool, actor: str | None,
                  new_labels: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Write name/config/metadata/label changes to a locked instance with an ``update`` event;
    returns the instance as stored afterwards (unchanged, and no event, if nothing changed)."""
    if name is not None:
        rules.check_name(name)
    if metadata is not None:
        rules.check_metadata(metadata)
    changes = rules.field_changes(current, name, config, metadata, replace, new_labels)
    if not changes:
        return current
    now = utcnow()
    event = update_event(current, changes, now, actor)
    limit = rules.new_child_limit(changes)
    row = tx.run(QUERIES.update_instances.text, rows=[{
        "id": current["id"], "version": current["version"], "changes": changes,
        "now": now.isoformat(), "event": stored_event(event),
        "max_children": limit, "label_pairs": rules.label_pairs(changes)}]).single()
    assert row is not None  # its lock is held
    if not row["applies"]:  # at the version locked: only the child limit refuses it
        rules.check_lowered_limit(current["id"], row["child_count"], limit)
        raise AssertionError("update_instances refused a locked instance")
    audit.record_written([event])
    stored: dict[str, Any] = row["instance"]
    return stored


_STAMPED = {"start": "started", "stop": "stopped", "archive": "archived"}
"""The events that set a timestamp, and the row flag that says so."""


def write_changes(tx: ManagedTransaction, changes: list[StatusChange], at: datetime,
                  actor: str | None, reason: str | None, instance_id: str | None = None
                  ) -> dict[str, Any] | None:
    """Write ``changes`` to locked instances, and their audit events, in one statement;
    returns the instance ``instance_id`` as it is afterwards (None without changes)."""
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


def delete_subtree(tx: ManagedTransaction, instance_id: str, actor: str | None,
                   reason: str | None, action: str = "delete") -> list[str]:
    """Delete a locked instance's subtree, all at rest and without liens, writing one
    event per instance; ``action`` (delete, purge) is what a lien's refusal names.

    The events it writes are not linked (their instances are gone), and the locks of the
    instances' events are taken in the sequencer's order before DETACH DELETE takes them
    in its own (``lock_events_of``)."""
    rows = lock_subtree(tx, instance_id)
    liens.refuse_if_protected(tx, [r["id"] for r in rows], action, instance_id)
    running = [r["id"] for r in rows if InstanceStatus(r["status"]).is_running]
    if running:
        raise InstanceRunning(
            f"cannot delete {instance_id}: {len(running)} instance(s) in its subtree are "
            "ACTIVE or PAUSED (stop them, or delete with force)",
            id=instance_id, running=running[:20])
    ids = [r["id"] for r in rows]
    tx.run(QUERIES.lock_events_of.text, ids=ids).consume()
    tx.run(QUERIES.delete_subtree.text, id=instance_id).consume()
    now = utcnow()
    append_events(tx, [
        new_event(r["id"], "delete", r["status"], None, now, actor=actor, reason=reason,
                  cause=None if r["id"] == instance_id else instance_id, offset=offset,
                  parent_id=r["parent_id"])
        for offset, r in enumerate(rows, 1)])
    return ids
