"""The writes that share their commit: transitions without a cascade, and heartbeats.

Each kind has one :class:`~hopper_graph.groupcommit.GroupCommit` per :class:`Batches`
(one per manager, so one per process in the API): what queued while a batch was in flight
goes to the server as the next batch, one statement whose rows each carry their own
conditions (``transition_instances``, ``record_heartbeats``). A row's outcome is the row
the statement returned for it, or None when its instance was not found; the caller turns
it into the answer or the typed error it would have had alone.

Bookmarks: a batch follows every caller's bookmarks, and each caller keeps the bookmarks
its batch's commit left, so read-your-writes holds as it does for a write of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hopper_graph.graph import Graph, followed, remember
from hopper_graph.groupcommit import GroupCommit
from hopper_graph.queries import QUERIES

Row = dict[str, Any]


@dataclass(slots=True)
class _Request:
    row: Row
    follow: tuple[str, ...]


@dataclass(slots=True)
class _Outcome:
    row: Row | None
    bookmarks: tuple[str, ...]


class Batches:
    """The group-committed writes of one manager."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.transitions: GroupCommit[_Request, _Outcome] = GroupCommit(self._transitions)
        self.heartbeats: GroupCommit[_Request, _Outcome] = GroupCommit(self._heartbeats)

    def transition(self, row: Row) -> Row | None:
        """One ``transition_instances`` row (id, event, edges, expected_version, ...), written
        in the batch it joins: the statement's row for it, or None (no such instance)."""
        return self._submit(self.transitions, row)

    def heartbeat(self, instance_id: str, now: datetime) -> Row | None:
        """Record a heartbeat in the batch it joins: the instance's row, or None."""
        return self._submit(self.heartbeats, {"id": instance_id, "now": now})

    @staticmethod
    def _submit(group: GroupCommit[_Request, _Outcome], row: Row) -> Row | None:
        outcome = group.submit(_Request(row, followed()), key=row["id"])
        remember(outcome.bookmarks)
        return outcome.row

    def _transitions(self, requests: Sequence[_Request]) -> list[_Outcome]:
        rows = sorted((r.row for r in requests), key=lambda row: row["id"])  # lock order
        found, bookmarks = self.graph.write_shared(
            QUERIES.transition_instances.text, [r.follow for r in requests], rows=rows)
        return _outcomes(requests, found, bookmarks)

    def _heartbeats(self, requests: Sequence[_Request]) -> list[_Outcome]:
        ids = sorted(r.row["id"] for r in requests)
        now = max(r.row["now"] for r in requests)
        found, bookmarks = self.graph.write_shared(
            QUERIES.record_heartbeats.text, [r.follow for r in requests], ids=ids, now=now)
        return _outcomes(requests, found, bookmarks)


def _outcomes(requests: Sequence[_Request], found: list[Row], bookmarks: tuple[str, ...]
              ) -> list[_Outcome]:
    by_id = {row["id"]: row for row in found}
    return [_Outcome(by_id.get(r.row["id"]), bookmarks) for r in requests]
