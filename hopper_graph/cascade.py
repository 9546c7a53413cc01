"""The cascade: what an event on one instance does to the subtree below it.

A stop, pause or archive moves the descendants first (deepest first), a resume wakes top
down only what that instance's own pause put to sleep, and an EPHEMERAL instance that
stops is archived at once with its subtree (PRODUCT.md, "Cascade"). The subtree is read
(or locked) once by :meth:`Subtree.read`; deciding the changes is pure, on the rows in
memory, by the edges of the compiled ``TRANSITIONS`` table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from neo4j import ManagedTransaction

from hopper_graph.enums import InstanceStatus, InstanceType
from hopper_graph.machine import TRANSITIONS, StatusChange
from hopper_graph.statements import lock_descendants


class Subtree:
    """The descendants of an instance (parents before children) and the cascades."""

    def __init__(self, root_id: str, rows: list[dict[str, Any]]) -> None:
        self.root_id = root_id
        self.rows = rows

    @classmethod
    def read(cls, tx: ManagedTransaction, root_id: str, lock: bool = True) -> Subtree:
        """The descendants of ``root_id`` as stored: locked top down, or only read."""
        return cls(root_id, lock_descendants(tx, root_id, lock))

    @classmethod
    def empty(cls) -> Subtree:
        return cls("", [])

    def running(self) -> list[str]:
        return [r["id"] for r in self.rows if InstanceStatus(r["status"]).is_running]

    def cascade(self, event: str, root_id: str, root_status: InstanceStatus
                ) -> list[StatusChange]:
        """The changes ``event`` on the root causes below it (PRODUCT.md, "Cascade")."""
        if event == "stop":
            return self._move(reversed(self.rows), "stop", root_id, lambda s: s.is_running)
        if event == "pause":
            return self._move(reversed(self.rows), "pause", root_id,
                              lambda s: s is InstanceStatus.ACTIVE)
        if event == "archive":
            return self._move(reversed(self.rows), "archive", root_id,
                              lambda s: s is not InstanceStatus.ARCHIVED)
        if event == "resume":
            return self._resume(root_id, root_status)
        return []

    def _move(self, rows: Iterable[dict[str, Any]], event: str, cause: str,
              wanted: Callable[[InstanceStatus], bool]) -> list[StatusChange]:
        changes = []
        for row in rows:
            status = InstanceStatus(row["status"])
            if wanted(status):
                target = TRANSITIONS[status, event]
                changes.append(StatusChange(row["id"], event, status, target, cause))
                row["status"] = target.value
        return changes

    def _resume(self, root_id: str, root_status: InstanceStatus) -> list[StatusChange]:
        status_of = {root_id: root_status.value}
        changes = []
        for row in self.rows:  # parents first: a child resumes only under an ACTIVE parent
            status_of[row["id"]] = row["status"]
            if (row["status"] == InstanceStatus.PAUSED.value and row.get("paused_by") == root_id
                    and status_of.get(row["parent_id"]) == InstanceStatus.ACTIVE.value):
                target = TRANSITIONS[InstanceStatus.PAUSED, "resume"]
                changes.append(StatusChange(row["id"], "resume", InstanceStatus.PAUSED, target,
                                            root_id))
                row["status"] = status_of[row["id"]] = target.value
        return changes

    def auto_archive(self, changes: list[StatusChange], root_type: dict[str, str],
                     cause: str) -> list[StatusChange]:
        """EPHEMERAL instances that just stopped are archived at once, with their subtree;
        ``cause`` is the instance the event was sent to."""
        types = {r["id"]: r["instance_type"] for r in self.rows} | root_type
        stopped = [c.id for c in changes if c.event == "stop"
                   and types.get(c.id) == InstanceType.EPHEMERAL.value]
        if not stopped:
            return []
        status_of = {c.id: c.status.value for c in changes}
        status_of |= {r["id"]: r["status"] for r in self.rows}
        children: dict[str | None, list[str]] = {}
        for row in self.rows:
            children.setdefault(row["parent_id"], []).append(row["id"])
        depth = {r["id"]: r["depth"] for r in self.rows}
        archived: list[StatusChange] = []
        for top in sorted(stopped, key=lambda i: depth.get(i, -1)):  # topmost first
            if status_of[top] == InstanceStatus.ARCHIVED.value:
                continue
            order = [top]
            for node in order:  # breadth first: the subtree of `top`, parents first
                order.extend(children.get(node, []))
            for node in reversed(order):
                status = InstanceStatus(status_of[node])
                if status is InstanceStatus.ARCHIVED or status.is_running:
                    continue
                target = TRANSITIONS[status, "archive"]
                archived.append(StatusChange(node, "archive", status, target, cause))
                status_of[node] = target.value
        return archived
