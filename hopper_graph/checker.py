"""The invariant checker: scan the whole graph and report every broken hierarchy rule.

Each rule is one named query in ``cypher/checker.cypher`` (so each also runs in Neo4j
Browser on its own), run once over the whole graph: one round trip per rule, never one per
instance. Most queries return only the offending rows; two return facts the rule is judged
on in Python: the child counts with each parent's config (the limit lives in a JSON string),
and the PARENT_OF edges (a cycle search in Python is linear; a path search per node in
Cypher is quadratic on long chains).

The checks read committed data one query after another, not one snapshot: run them on a
quiet graph, or re-run to confirm what a busy one reports.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from neo4j import Driver, ManagedTransaction

from hopper_graph import audit
from hopper_graph import config as scope_config
from hopper_graph.graph import Graph
from hopper_graph.queries import QUERIES, NamedQuery
from hopper_graph.restores import unfinished
from hopper_graph.rules import with_article

KINDS: dict[str, str] = {
    "restore-unfinished": "a restore began and has not finished: the graph is incomplete",
    "multiple-globals": "more than one GLOBAL instance",
    "missing-parent": "a non-GLOBAL instance without a parent",
    "multiple-parents": "an instance with more than one incoming PARENT_OF",
    "parent-scope": "a parent whose scope the child's scope does not allow",
    "cycle": "instances that are their own ancestors (a PARENT_OF cycle)",
    "duplicate-name": "two or more instances share (name, scope)",
    "child-limit": "more children than the parent's limits.max_child_instances",
    "config-unreadable": "a stored config without a readable limits.max_child_instances",
    "parent-id-mismatch": "the parent_id property does not name the actual parent",
    "depth-mismatch": "the depth property is not the parent's depth + 1 (0 for a root)",
    "status-event-mismatch": "the status is not the to_status of the latest audit event",
    "running-under-parent": "ACTIVE under a parent that is not ACTIVE, or PAUSED under one "
                            "that is neither ACTIVE nor PAUSED",
    "ephemeral-stopped": "an EPHEMERAL instance left STOPPED (stopping archives it)",
    "nfc-twins": "names (or top-level project_ids) that differ only in their Unicode form: "
                 "one name in NFC, stored twice",
}
"""Every kind of violation: a stable slug and what it means."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: its kind (a slug of ``KINDS``), the instances involved and a
    sentence saying what is wrong."""

    kind: str
    instance_ids: tuple[str, ...]
    message: str

    @property
    def instance_id(self) -> str | None:
        """The first (usually the only) instance involved."""
        return self.instance_ids[0] if self.instance_ids else None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "instance_ids": list(self.instance_ids),
                "message": self.message}


Rows = list[dict[str, Any]]
Judge = Callable[[Rows], Iterable[Violation]]


def check_invariants(driver: Driver, database: str | None = None,
                     progress: Callable[[int, int | None], None] | None = None
                     ) -> list[Violation]:
    """Every violation of the hierarchy invariants, grouped by check, each group by id.

    An empty list means the graph is consistent. An unfinished restore comes first (a
    ``restore-unfinished`` violation naming it and what to run): what follows it is
    what a half-written graph looks like. Raises DatabaseUnavailable when Neo4j cannot be
    reached. ``progress(done, total)`` hears each check as it completes.
    """
    violations: list[Violation] = []
    report = progress or _silent
    report(0, len(_CHECKS))
    graph = Graph(driver, database)
    restore = unfinished(graph)
    if restore is not None:  # and write nothing to a graph an import may be writing
        violations.append(Violation("restore-unfinished", (), restore.advice()))
    else:
        audit.sequence_all(graph)  # "latest event" is by seq: number what waits for one
    for done, (query, judge) in enumerate(_CHECKS, start=1):
        violations.extend(judge(graph.read(_fetch, query.text)))
        report(done, len(_CHECKS))
    return violations


def nfc_twins(driver: Driver, database: str | None = None) -> list[Violation]:
    """The names (and top-level project_ids) stored in different Unicode forms of one NFC
    text: written before writes normalised them (rules.nfc), they now stand for one name.
    ``schema apply`` reports them, as ``check`` does (one query)."""
    graph = Graph(driver, database)
    return list(_nfc_twins(graph.read(_fetch, QUERIES.check_nfc_twins.text)))


def _silent(done: int, total: int | None) -> None:
    """The progress callback of a caller that wants none."""


def _fetch(tx: ManagedTransaction, query: str) -> Rows:
    return [record.data() for record in tx.run(query)]


# -- the judges: rows of one query -> violations -------------------------------------------
def _multiple_globals(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        ids = tuple(row["ids"])
        yield Violation("multiple-globals", ids,
                        f"{len(ids)} GLOBAL instances exist ({', '.join(ids)}); one is allowed")


def _parent_count(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        scope, parents = row["scope"], row["parents"]
        if not parents:
            yield Violation("missing-parent", (row["id"],),
                            f"{scope} instance {row['id']} has no parent")
        else:
            yield Violation("multiple-parents", (row["id"], *parents),
                            f"{scope} instance {row['id']} has {len(parents)} parents: "
                            f"{', '.join(parents)}")


def _parent_scope(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        yield Violation("parent-scope", (row["id"], row["parent_id"]),
                        f"{row['scope']} instance {row['id']} has parent {row['parent_id']}, "
                        f"whose scope {row['parent_scope']} it does not allow")


def _cycles(rows: Rows) -> Iterable[Violation]:
    for members in find_cycles((row["parent"], row["child"]) for row in rows):
        yield Violation("cycle", tuple(members),
                        f"{len(members)} instance(s) are their own ancestors: "
                        f"{', '.join(members)}")


def _duplicate_names(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        ids = tuple(row["ids"])
        yield Violation("duplicate-name", ids,
                        f"{len(ids)} {row['scope']} instances are named {row['name']!r}: "
                        f"{', '.join(ids)}")


def _child_limits(rows: Rows) -> Iterable[Violation]:
    for row in sorted(rows, key=lambda r: r["id"]):
        try:
            limit = scope_config.max_child_instances(json.loads(row["config"]))
        except (TypeError, ValueError, AttributeError):
            yield Violation("config-unreadable", (row["id"],),
                            f"instance {row['id']} has {row['child_count']} children but no "
                            "readable limits.max_child_instances in its stored config")
            continue
        if row["child_count"] > limit:
            yield Violation("child-limit", (row["id"],),
                            f"instance {row['id']} has {row['child_count']} children; "
                            f"limits.max_child_instances is {limit}")


def _parent_id_property(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        yield Violation("parent-id-mismatch", (row["id"],),
                        f"instance {row['id']} stores parent_id {row['stored'] or '(none)'} but "
                        f"its parent is {row['actual'] or '(none)'}")


def _depth_property(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        expected = "unknown (its parent has no depth)" if row["expected"] is None \
            else row["expected"]
        yield Violation("depth-mismatch", (row["id"],),
                        f"instance {row['id']} stores depth {row['depth']}; expected "
                        f"{expected}")


def _status_vs_events(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        last = row["last_event"]
        if last is None:
            detail = "it has no audit event"
        elif last["to_status"] is None:
            detail = f"its latest event (seq {last['seq']}) is {with_article(last['event'])}"
        else:
            detail = (f"its latest event (seq {last['seq']}, {last['event']}) says "
                      f"{last['to_status']}")
        yield Violation("status-event-mismatch", (row["id"],),
                        f"instance {row['id']} is {row['status']} but {detail}")


def _running_under_parent(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        yield Violation("running-under-parent", (row["id"], row["parent_id"]),
                        f"instance {row['id']} is {row['status']} under parent "
                        f"{row['parent_id']}, which is {row['parent_status']}")


def _ephemeral_stopped(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        yield Violation("ephemeral-stopped", (row["id"],),
                        f"EPHEMERAL instance {row['id']} is STOPPED; it should have been "
                        "archived when it stopped")


def _nfc_twins(rows: Rows) -> Iterable[Violation]:
    for row in rows:
        ids = tuple(row["ids"])
        what = (f"{row['scope']} instances are named" if row["field"] == "name"
                else "top-level PROJECTs have the project_id")
        yield Violation("nfc-twins", ids,
                        f"{len(ids)} {what} {row['value']!r} in Unicode NFC, stored in "
                        f"different forms: {', '.join(ids)} (rename all but one)")


_CHECKS: tuple[tuple[NamedQuery, Judge], ...] = (
    (QUERIES.check_multiple_globals, _multiple_globals),
    (QUERIES.check_parent_count, _parent_count),
    (QUERIES.check_parent_scope, _parent_scope),
    (QUERIES.check_parent_edges, _cycles),
    (QUERIES.check_duplicate_names, _duplicate_names),
    (QUERIES.check_child_counts, _child_limits),
    (QUERIES.check_parent_id_property, _parent_id_property),
    (QUERIES.check_depth_property, _depth_property),
    (QUERIES.check_status_matches_last_event, _status_vs_events),
    (QUERIES.check_running_under_parent, _running_under_parent),
    (QUERIES.check_ephemeral_stopped, _ephemeral_stopped),
    (QUERIES.check_nfc_twins, _nfc_twins),
)


def find_cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """The groups of nodes caught in directed cycles of ``(parent, child)`` edges, each
    sorted, in linear time and without recursion.

    Nodes that can be peeled off (no parent left, or no child left, repeatedly) lie on no
    cycle; what remains is cycles and whatever joins them, reported per connected group.
    """
    children: dict[str, list[str]] = defaultdict(list)
    parents: dict[str, list[str]] = defaultdict(list)
    for parent, child in edges:
        children[parent].append(child)
        parents[child].append(parent)
    rest = set(children) | set(parents)
    _peel(rest, parents, children)
    _peel(rest, children, parents)
    groups: list[list[str]] = []
    seen: set[str] = set()
    for start in sorted(rest):
        if start in seen:
            continue
        seen.add(start)
        group, queue = [], [start]
        while queue:
            node = queue.pop()
            group.append(node)
            for other in (*children[node], *parents[node]):
                if other in rest and other not in seen:
                    seen.add(other)
                    queue.append(other)
        groups.append(sorted(group))
    return groups


def _peel(rest: set[str], incoming: dict[str, list[str]],
          outgoing: dict[str, list[str]]) -> None:
    """Remove from ``rest``, repeatedly, every node with no incoming edge inside ``rest``."""
    degree = {node: sum(1 for other in incoming[node] if other in rest) for node in rest}
    queue = [node for node, count in degree.items() if count == 0]
    while queue:
        node = queue.pop()
        rest.discard(node)
        for other in outgoing[node]:
            if other in rest:
                degree[other] -= 1
                if degree[other] == 0:
                    queue.append(other)
