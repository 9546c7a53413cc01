"""An unfinished restore: found, named, and kept from being read as if it were whole.

``import`` writes a ``(:HopperRestore {started_at, file, host, pid, instances, events})``
marker in a transaction of its own before anything else, and removes it in the last
transaction, the one that makes the restored graph live. While the marker is there the
graph is not whole: an import is running, or one was killed mid-way. Then:

- :func:`unfinished` finds the marker (one node, through the label's lookup index) and
  :func:`refusal` is the error that names it and what to run;
- :class:`RestoreWatch` is the check every read and write of an ``InstanceManager`` makes
  (its Graph's guard): it raises RestoreUnfinished while a marker is there. It asks the
  server at most once per ``ttl`` seconds per driver and database, so a read costs no
  extra round trip; an import in this process forgets the answer (:func:`forget`) when it
  writes or removes a marker, so this process sees the change at once, another within
  ``ttl``.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from neo4j import Driver

from hopper_graph.errors import RestoreUnfinished
from hopper_graph.graph import Graph
from hopper_graph.queries import QUERIES

TTL = 1.0
"""Seconds a RestoreWatch trusts its last answer (another process's import is seen this
late at worst; this process's at once)."""


@dataclass(frozen=True, slots=True)
class UnfinishedRestore:
    """The marker of a restore that has begun and not finished."""

    started_at: str
    file: str | None
    host: str | None
    pid: int | None
    instances: int | None
    events: int | None

    @property
    def rerun(self) -> str:
        """The command that removes what it left and restores the file again."""
        if self.file and self.file != "-":
            return f"hopper-graph import {self.file}"
        return "hopper-graph import FILE (the same export)"

    def describe(self) -> str:
        source = "stdin" if self.file == "-" else self.file or "an export"
        where = f" by pid {self.pid} on {self.host}" if self.pid and self.host else ""
        return f"a restore of {source} begun at {self.started_at}{where} has not finished"

    def advice(self) -> str:
        return (f"{self.describe()}: the graph is incomplete. If that import is no longer "
                f"running, run `{self.rerun}` again: it removes everything the unfinished "
                "restore left (and anything written since) before it restores")

    def to_dict(self) -> dict[str, Any]:
        return {"started_at": self.started_at, "file": self.file, "host": self.host,
                "pid": self.pid, "instances": self.instances, "events": self.events,
                "rerun": self.rerun}


def unfinished(graph: Graph) -> UnfinishedRestore | None:
    """The marker of an unfinished restore (the oldest, should there be two), or None."""
    rows = graph.read_rows(QUERIES.get_restore_marker.text)
    if not rows:
        return None
    marker = rows[0]["marker"]
    return UnfinishedRestore(
        started_at=str(marker.get("started_at")), file=marker.get("file"),
        host=marker.get("host"), pid=marker.get("pid"), instances=marker.get("instances"),
        events=marker.get("events"))


def refusal(restore: UnfinishedRestore, doing: str) -> RestoreUnfinished:
    """The error that refuses ``doing`` (a verb phrase) while ``restore`` is unfinished."""
    return RestoreUnfinished(f"cannot {doing}: {restore.advice()}", restore=restore.to_dict())


def refuse_if_unfinished(graph: Graph, doing: str) -> None:
    """Raise RestoreUnfinished when a restore is unfinished (asked now, never cached)."""
    restore = unfinished(graph)
    if restore is not None:
        raise refusal(restore, doing)


_Answer = tuple[float, UnfinishedRestore | None]
_ANSWERS: weakref.WeakKeyDictionary[Driver, dict[str | None, _Answer]] = (
    weakref.WeakKeyDictionary())
_LOCK = threading.Lock()


def forget(driver: Driver, database: str | None) -> None:
    """Drop the cached answer for ``database``: a marker was written or removed."""
    with _LOCK:
        _ANSWERS.get(driver, {}).pop(database, None)


class RestoreWatch:
    """A Graph's guard: RestoreUnfinished while a restore is unfinished (cached ``ttl``)."""

    def __init__(self, driver: Driver, database: str | None, ttl: float = TTL) -> None:
        self.graph = Graph(driver, database)  # unguarded: the guard's own lookups
        self.ttl = ttl

    def current(self) -> UnfinishedRestore | None:
        """The unfinished restore, as last seen at most ``ttl`` seconds ago."""
        driver, database = self.graph.driver, self.graph.database
        now = time.monotonic()
        with _LOCK:
            answer = _ANSWERS.get(driver, {}).get(database)
        if answer is not None and now - answer[0] < self.ttl:
            return answer[1]
        restore = unfinished(self.graph)
        with _LOCK:
            _ANSWERS.setdefault(driver, {})[database] = (now, restore)
        return restore

    def __call__(self) -> None:
        restore = self.current()
        if restore is not None:
            raise refusal(restore, "use the graph")
