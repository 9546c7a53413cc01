"""The writes that share their commit: transitions without a cascade, heartbeats and
field updates.

Each kind has one :class:`~hopper_graph.groupcommit.GroupCommit` per :class:`Batches`
(one per manager, so one per process in the API): what queued while a batch was in flight
goes to the server as the next batch, one statement whose rows each carry their own
conditions (``transition_instances``, ``record_heartbeats``, ``update_instances``). A
row's outcome is the row the statement returned for it, or None when its instance was not
found; the caller turns it into the answer or the typed error it would have had alone.

A uniqueness constraint is checked at commit and fails the whole transaction, not the row
that broke it: a batch of updates in which one rename takes a name already taken would
fail every row. So a batch refused by a constraint is written again one row at a time, and
only the row that broke it gets the error.

Bookmarks: a batch follows every caller's bookmarks, and each caller keeps the bookmarks
its batch's commit left, so read-your-writes holds as it does for a write of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hopper_graph.errors import Conflict
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
        self.transitions: GroupCommit[_Request, _Outcome] = GroupCommit(self._transitions,
                                                                        name="transition")
        """Transitions without a cascade and without before-hooks."""
        self.heartbeats: GroupCommit[_Request, _Outcome] = GroupCommit(self._heartbeats,
                                                                       name="heartbeat")
        self.updates: GroupCommit[_Request, _Outcome] = GroupCommit(self._updates,
                                                                    name="update")

    def transition(self, row: Row) -> Row | None:
        """One ``transition_instances`` row (id, event, edges, expected_version, ...), written
        in the batch it joins: the statement's row for it, or None (no such instance)."""
        return self._submit(self.transitions, row)

    def heartbeat(self, instance_id: str, now: datetime) -> Row | None:
        """Record a heartbeat in the batch it joins: the instance's row, or None."""
        return self._submit(self.heartbeats, {"id": instance_id, "now": now})

    def update(self, row: Row) -> Row | None:
        """One ``update_instances`` row (id, version, changes, now, event), written in the
        batch it joins: the statement's row for it, or None (no such instance)."""
        return self._submit(self.updates, row)

    @staticmethod
    def _submit(group: GroupCommit[_Request, _Outcome], row: Row) -> Row | None:
        outcome = group.submit(_Request(row, followed()), key=row["id"])
        remember(outcome.bookmarks)
        return outcome.row

    def _transitions(self, requests: Sequence[_Request]) -> list[_Outcome]:
        return self._rows(QUERIES.transition_instances.text, requests)

    def _heartbeats(self, requests: Sequence[_Request]) -> list[_Outcome]:
        ids = sorted(r.row["id"] for r in requests)
        now = max(r.row["now"] for r in requests).isoformat()  # text: see transition_instances
        found, bookmarks = self.graph.write_shared(
            QUERIES.record_heartbeats.text, [r.follow for r in requests], ids=ids, now=now)
        return _outcomes(requests, found, bookmarks)


    def _updates(self, requests: Sequence[_Request]) -> Sequence[_Outcome | BaseException]:
        try:
            return self._rows(QUERIES.update_instances.text, requests)
        except Conflict:  # a constraint refused the batch: find the row that broke it
            if len(requests) == 1:
                raise
            return [_alone(self._rows, QUERIES.update_instances.text, r) for r in requests]

    def _rows(self, query: str, requests: Sequence[_Request]) -> list[_Outcome]:
        rows = sorted((r.row for r in requests), key=lambda row: row["id"])  # lock order
        found, bookmarks = self.graph.write_shared(query, [r.follow for r in requests],
                                                   rows=rows)
        return _outcomes(requests, found, bookmarks)


def _alone(write: Callable[[str, Sequence[_Request]], list[_Outcome]], query: str,
           request: _Request) -> _Outcome | BaseException:
    try:
        return write(query, [request])[0]
    except Conflict as error:
        return error


def _outcomes(requests: Sequence[_Request], found: list[Row], bookmarks: tuple[str, ...]
              ) -> list[_Outcome]:
    by_id = {row["id"]: row for row in found}
    return [_Outcome(by_id.get(r.row["id"]), bookmarks) for r in requests]
