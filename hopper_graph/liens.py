"""Liens: a reason, and who holds it, that protects an instance from going away.

While an instance has a lien, deleting it or any of its ancestors (``force`` included),
archiving it (on its own or by an ancestor's archive cascading into it) and purging it
are refused with :class:`InstanceProtected`, which names each protected instance and each
lien's reason and origin. An EPHEMERAL instance that stops is still archived with it (that
is what EPHEMERAL means), but stays until its liens are gone: neither a delete nor a purge
takes it.

A lien is a node, ``(:HopperInstance)-[:HAS_LIEN]->(:Lien {id, instance_id, reason,
origin, actor, created_at})``; adding and removing one writes an ``add_lien`` or
``remove_lien`` audit event, and neither changes the instance's ``version`` (a lien is not
a field of the instance, so an ETag a client holds stays good). Race-free by locks: adding
or removing a lien takes the instance's write lock, and every delete, archive and purge
looks for liens only once it holds the locks of the instances it would remove or archive.
So a lien added while an ancestor is deleted with force either lands first, and the delete
is refused, or finds the instance gone (NotFound).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from neo4j import ManagedTransaction

from hopper_graph import statements  # a module: statements imports this one too
from hopper_graph.audit import check_event_text, new_event, record_written, stored_event
from hopper_graph.errors import InstanceProtected, NotFound, ValidationError
from hopper_graph.queries import QUERIES
from hopper_graph.rules import MAX_REASON_LENGTH, MAX_TEXT_LENGTH, check_text

MAX_LIEN_REASON_LENGTH = MAX_REASON_LENGTH
"""A lien's reason, as long as any reason; its ``add_lien`` event quotes it after the
lien's id (and before its origin), cut to fit the event's own reason."""
MAX_LISTED = 20
"""Protected instances an InstanceProtected error lists at most (it says how many more)."""


@dataclass(frozen=True, slots=True)
class Lien:
    """One lien: what protects ``instance_id``, why (``reason``) and whose it is (``origin``:
    a system, a team, a ticket)."""

    id: str
    instance_id: str
    reason: str
    origin: str | None
    actor: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Lien:
        return cls(row["id"], row["instance_id"], row["reason"], row.get("origin"),
                   row.get("actor"), datetime.fromisoformat(row["created_at"]))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "instance_id": self.instance_id, "reason": self.reason,
                "origin": self.origin, "actor": self.actor,
                "created_at": self.created_at.isoformat()}


def check_lien(reason: object, origin: object) -> None:
    """A lien's reason is required text with a visible character; origin optional text."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("a lien needs a reason", errors={
            "reason": ["must be a non-empty string"]})
    check_text("reason", reason, MAX_LIEN_REASON_LENGTH)
    if origin is not None and not isinstance(origin, str):
        raise ValidationError("origin must be a string", errors={"origin": ["must be a string"]})
    check_text("origin", origin, MAX_TEXT_LENGTH)


def _written(event: dict[str, Any], status: str) -> None:
    """Tell the write's subscribers about ``event``, with the status read under the lock
    (a lien changes none: from_status and to_status are both the instance's)."""
    event["from_status"] = event["to_status"] = status
    record_written([event])


def _found(record: Any, instance_id: str) -> Any:
    """The record of a lien's write: NotFound without one, RestoreInProgress while an
    import writes the instance."""
    if record is None:
        raise statements.not_found(instance_id)
    if record["restoring"]:
        raise statements.restore_in_progress(instance_id)
    return record


def add(tx: ManagedTransaction, instance_id: str, reason: str, origin: str | None,
        actor: str | None) -> Lien:
    """Add a lien to an instance, under its lock, with its ``add_lien`` event."""
    check_lien(reason, origin)
    check_event_text(actor, None)
    now, lien_id = statements.utcnow(), str(uuid.uuid4())
    lien = {"id": lien_id, "reason": reason, "origin": origin, "actor": actor}
    text = f"lien {lien_id}" + (f" from {origin}" if origin else "") + f": {reason}"
    if len(text) > MAX_REASON_LENGTH:
        text = text[:MAX_REASON_LENGTH - 1] + "…"
    event = new_event(instance_id, "add_lien", None, None, now, actor=actor, reason=text)
    record = _found(tx.run(QUERIES.add_lien.text, instance_id=instance_id, lien=lien,
                           now=now.isoformat(), event=stored_event(event)).single(),
                    instance_id)
    _written(event, record["status"])
    return Lien(lien_id, instance_id, reason, origin, actor, now)


def remove(tx: ManagedTransaction, instance_id: str, lien_id: str,
           actor: str | None) -> Lien:
    """Remove one lien of an instance, under its lock, with its ``remove_lien`` event."""
    check_event_text(actor, None)
    now = statements.utcnow()
    # The event names the lien by its id: its reason is read in the same statement that
    # deletes it (the add_lien event before it quotes the reason).
    event = new_event(instance_id, "remove_lien", None, None, now, actor=actor,
                      reason=f"lien {lien_id}")
    record = _found(tx.run(QUERIES.remove_lien.text, instance_id=instance_id,
                           lien_id=lien_id, now=now.isoformat(),
                           event=stored_event(event)).single(), instance_id)
    if record["lien"] is None:
        raise NotFound(f"instance {instance_id} has no lien {lien_id}", id=instance_id,
                       lien_id=lien_id)
    _written(event, record["status"])
    return Lien.from_row(record["lien"])


def list_rows(rows: list[dict[str, Any]], instance_id: str) -> list[Lien]:
    """The liens of ``get_liens``' answer; NotFound when it found no instance."""
    if not rows:
        raise statements.not_found(instance_id)
    return [Lien.from_row(r) for r in rows[0]["liens"]]


def refuse_if_protected(tx: ManagedTransaction, ids: Sequence[str], action: str,
                        instance_id: str) -> None:
    """InstanceProtected when any of ``ids`` has a lien: ``action`` (delete, archive,
    purge) of ``instance_id`` would take it. Call it holding the locks of ``ids``."""
    if not ids:
        return
    rows = [record.data() for record in tx.run(QUERIES.get_liens_of.text, ids=list(ids))]
    if rows:
        raise protected(rows, action, instance_id)


def protected(rows: list[dict[str, Any]], action: str, instance_id: str
              ) -> InstanceProtected:
    """The error for ``action`` of ``instance_id``, refused by the liens of ``rows`` (rows of
    ``get_liens_of``: the protected instances, each with its liens)."""
    listed = rows[:MAX_LISTED]
    parts = []
    for row in listed:
        liens = "; ".join(f"{lien['reason']!r}" + (f" from {lien['origin']}"
                                                    if lien.get("origin") else "")
                          for lien in row["liens"])
        who = "it" if row["id"] == instance_id else f"{row['scope']} {row['id']} ({row['name']})"
        parts.append(f"{who} has {len(row['liens'])} lien(s): {liens}")
    more = f"; and {len(rows) - MAX_LISTED} more protected instance(s)" \
        if len(rows) > MAX_LISTED else ""
    return InstanceProtected(
        f"cannot {action} {instance_id}: " + "; ".join(parts) + more
        + " (remove the liens first)",
        id=instance_id, action=action,
        protected=[{"id": r["id"], "name": r["name"], "scope": r["scope"],
                    "liens": [{"id": lien["id"], "reason": lien["reason"],
                               "origin": lien.get("origin")} for lien in r["liens"]]}
                   for r in listed])
