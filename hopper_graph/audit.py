"""The audit trail: events, the change feed's order, and what a write tells subscribers.

Every change writes its events in its own transaction, as ``PendingEvent`` nodes with no
``seq``: a writer takes no lock but those of the instances it changes. The feed's order is
given afterwards by :func:`sequence`: under the event counter's lock, for two short
statements and their commit, the committed pending events get the next numbers. Whoever
reads the feed (``events_since``, a history, an export, the in-process subscribers)
sequences first, so the feed is complete up to the moment it is read.

Why no event is ever skipped: a seq exists only once a sequencing committed it, and every
sequencing runs after the one before it committed (the lock) and numbers above it. So a
reader who has seen seq N never later finds a committed event below N: whatever commits
later, and every event still pending, is numbered above N.
"""

from __future__ import annotations

import builtins
import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from neo4j import ManagedTransaction

from hopper_graph.graph import Graph
from hopper_graph.queries import QUERIES
from hopper_graph.rules import MAX_REASON_LENGTH, MAX_TEXT_LENGTH, check_text

SEQUENCE_BATCH = 10_000
"""Events one sequencing transaction numbers at most (a bulk import leaves 100,000)."""

_WRITTEN: ContextVar[list[dict[str, Any]] | None] = ContextVar("_WRITTEN", default=None)


def new_event(instance_id: str, event: str, from_status: str | None, to_status: str | None,
              at: datetime, actor: str | None = None, reason: str | None = None,
              cause: str | None = None, offset: int = 1,
              parent_id: str | None = None) -> dict[str, Any]:
    """An audit event as the write queries take it; ``offset`` is its place among the
    events of its transaction, which the feed keeps. A delete records ``parent_id``, where
    the instance hung: once it is gone, that is how the feed's subtree filter still places
    its events (see feed.py)."""
    check_event_text(actor, reason)
    written: dict[str, Any] = {
        "id": str(uuid.uuid4()), "instance_id": instance_id, "event": event,
        "from_status": from_status, "to_status": to_status, "actor": actor,
        "reason": reason, "cause": cause, "at": at, "offset": offset}
    if parent_id is not None:
        written["parent_id"] = parent_id
    return written


def check_event_text(actor: str | None, reason: str | None) -> None:
    check_text("actor", actor, MAX_TEXT_LENGTH)
    check_text("reason", reason, MAX_REASON_LENGTH)


def stored_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event's properties but its time, which the queries take once as a parameter."""
    return {k: v for k, v in event.items() if k not in ("at", "seq")}


def append_events(tx: ManagedTransaction, events: builtins.list[dict[str, Any]]) -> None:
    """Write audit events in ``tx``; they commit or roll back with the change they record.
    The events of one call share one time (``at`` of the first), sent once."""
    if not events:
        return
    tx.run(QUERIES.append_events.text, events=[stored_event(e) for e in events],
           at=events[0]["at"]).consume()
    record_written(events)


# -- what a write tells its subscribers ---------------------------------------------------
@contextlib.contextmanager
def collecting() -> Iterator[builtins.list[dict[str, Any]]]:
    """Collect the events written in this context (a write and its retries)."""
    written: builtins.list[dict[str, Any]] = []
    token = _WRITTEN.set(written)
    try:
        yield written
    finally:
        _WRITTEN.reset(token)


def record_written(events: builtins.list[dict[str, Any]]) -> None:
    """Note events a transaction wrote; a retried attempt replaces what the last wrote."""
    written = _WRITTEN.get()
    if written is not None:
        written.extend(events)


def forget_written() -> None:
    """A transaction attempt starts over: what it wrote before is rolled back."""
    written = _WRITTEN.get()
    if written is not None:
        written.clear()


# -- the feed's order ---------------------------------------------------------------------
def sequence(graph: Graph, limit: int = SEQUENCE_BATCH) -> int:
    """Number up to ``limit`` committed pending events; returns how many it numbered."""
    def work(tx: ManagedTransaction) -> int:
        tx.run(QUERIES.lock_event_counter.text).consume()  # held to commit
        record = tx.run(QUERIES.sequence_events.text, limit=limit).single()
        return int(record["sequenced"]) if record else 0
    return graph.write(work)


def sequence_all(graph: Graph) -> int:
    """Number every committed pending event, one batch per transaction."""
    total = 0
    while True:
        count = sequence(graph)
        total += count
        if count < SEQUENCE_BATCH:
            return total


def pending(graph: Graph, instance_id: str | None = None) -> tuple[int, bool]:
    """How many events wait for a seq, and whether any is ``instance_id``'s."""
    row = graph.read_rows(QUERIES.count_pending_events.text, instance_id=instance_id)[0]
    return int(row["pending"]), bool(row["own"])


def seqs_of(graph: Graph, event_ids: builtins.list[str]) -> dict[str, int | None]:
    """The seq of each event (None while it is pending)."""
    rows = graph.read_rows(QUERIES.get_event_seqs.text, ids=event_ids)
    return {row["id"]: row["seq"] for row in rows}
