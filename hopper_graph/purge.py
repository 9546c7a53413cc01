"""Purge: delete the ARCHIVED EPHEMERAL instances whose retention has passed.

An instance is purgeable when it is EPHEMERAL and ARCHIVED, its ``retention.purge_archived``
is true, and it was archived longer ago than its ``retention.archived_ttl_seconds`` (or than
``older_than``, which replaces the TTL but never overrides ``purge_archived: false``).
Deleting an instance deletes its subtree, so a purgeable instance goes only when every
instance below it is purgeable too; otherwise it is kept, and the report says which
descendant keeps it. Nothing that is not itself purgeable is ever deleted.

A run examines at most ``limit`` candidates (oldest archive first) and deletes in
transactions of at most ``batch`` instances, each with its ``delete`` audit events, so its
cost follows what it deletes. History survives, as for every delete. The verdicts are read
without locks; the delete locks each subtree and goes ahead only if no instance in it
changed since (its version), so a PATCH that pins a run meanwhile keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from neo4j import ManagedTransaction

from hopper_graph.errors import InstanceRunning, NotFound
from hopper_graph.lifecycle import InstanceLifecycleManager, delete_contexts
from hopper_graph.queries import QUERIES
from hopper_graph.repository import delete_subtree, lock_subtree, lock_with_parent, utcnow

DEFAULT_LIMIT = 10_000
DEFAULT_BATCH = 500


@dataclass(frozen=True, slots=True)
class PurgeItem:
    """One instance a purge looked at, and why it goes or stays."""

    id: str
    name: str
    scope: str
    archived_at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What a purge deleted (with ``dry_run``: would delete) and what it kept, with why."""

    dry_run: bool
    purged: list[PurgeItem]
    kept: list[PurgeItem]


def purge(lifecycle: InstanceLifecycleManager, older_than: timedelta | None = None, *,
          dry_run: bool = False, actor: str | None = None, limit: int = DEFAULT_LIMIT,
          batch: int = DEFAULT_BATCH) -> PurgeReport:
    """Purge what is purgeable (see the module docstring); ``dry_run`` deletes nothing."""
    now = utcnow()
    rows = lifecycle.repository.rows(QUERIES.find_purge_candidates.text, limit=limit)
    verdicts = {row["id"]: _own_verdict(row, now, older_than) for row in rows}
    _keep_parents_of_kept(rows, verdicts)
    items = {row["id"]: _item(row, verdicts[row["id"]][1]) for row in rows}
    going = [row for row in rows if verdicts[row["id"]][0]]
    roots = [row["id"] for row in going if not verdicts.get(row["parent_id"], (False,))[0]]
    kept = [items[row["id"]] for row in rows if not verdicts[row["id"]][0]]
    if dry_run:
        return PurgeReport(True, [items[row["id"]] for row in going], kept)
    deleted: list[str] = []
    children = {row["id"]: [c[0] for c in row["children"]] for row in rows}
    versions = {row["id"]: row["version"] for row in rows}
    for group in _batches(roots, _sizes(rows, verdicts), batch):
        gone, refused = _delete(lifecycle, group, versions, actor)
        deleted += gone
        kept += [replace(items[i], reason=why) for root, why in refused.items()
                 for i in _subtree(root, children)]
    return PurgeReport(False, [items[i] for i in deleted if i in items], kept)


def _own_verdict(row: dict[str, Any], now: datetime, older_than: timedelta | None
                 ) -> tuple[bool, str]:
    retention = orjson.loads(row["config"] or "{}").get("retention", {})
    archived_at = datetime.fromisoformat(row["archived_at"])
    if not retention.get("purge_archived", True):
        return False, "retention.purge_archived is false"
    if older_than is not None:
        keep_for, what = older_than, f"older than {_span(older_than)}"
    else:
        ttl = retention.get("archived_ttl_seconds")
        if ttl is None:
            return False, "no retention.archived_ttl_seconds"
        keep_for = timedelta(seconds=ttl)
        what = f"past its retention of {_span(keep_for)}"
    if archived_at > now - keep_for:
        return False, f"inside its retention until {(archived_at + keep_for).isoformat()}"
    return True, f"archived {archived_at.isoformat()}, {what}"


def _keep_parents_of_kept(rows: list[dict[str, Any]],
                          verdicts: dict[str, tuple[bool, str]]) -> None:
    """A purgeable instance with a descendant that stays stays too (deepest first: the
    candidates' children are all listed, so one pass per level settles it)."""
    changed = True
    while changed:
        changed = False
        for row in rows:
            if not verdicts[row["id"]][0]:
                continue
            for child_id, kind, status in row["children"]:
                child = verdicts.get(child_id)
                if child is None:
                    why = (f"has a descendant that is kept: {child_id} ({kind}, {status}, "
                           "not a purgeable EPHEMERAL)")
                elif not child[0]:
                    why = f"has a descendant that is kept: {child_id} ({child[1]})"
                else:
                    continue
                verdicts[row["id"]] = (False, why)
                changed = True
                break


def _sizes(rows: list[dict[str, Any]], verdicts: dict[str, tuple[bool, str]]
           ) -> dict[str, int]:
    """The size of each purgeable subtree (rows come oldest first, not by depth)."""
    children = {row["id"]: [c[0] for c in row["children"]] for row in rows}
    return {row["id"]: len(_subtree(row["id"], children))
            for row in rows if verdicts[row["id"]][0]}


def _subtree(root: str, children: dict[str, list[str]]) -> list[str]:
    """``root`` and every id below it, iteratively (chains may be thousands deep)."""
    stack, found = [root], []
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


def _batches(roots: list[str], sizes: dict[str, int], batch: int) -> Iterable[list[str]]:
    group: list[str] = []
    count = 0
    for root in roots:
        if group and count + sizes[root] > batch:
            yield group
            group, count = [], 0
        group.append(root)
        count += sizes[root]
    if group:
        yield group


def _delete(lifecycle: InstanceLifecycleManager, roots: list[str], versions: dict[str, int],
            actor: str | None) -> tuple[list[str], dict[str, str]]:
    """Delete the subtrees of ``roots`` in one transaction, with their hooks and events.

    The verdicts came from a read without locks: a PATCH since then may have made an
    instance not purgeable (``purge_archived: false``). So under the subtree's locks, a
    subtree goes only if every instance in it is still at the version that was judged
    (``versions``); else it stays, and the second value says why, per root."""
    hooks = lifecycle.hooks
    at = utcnow()

    def work(tx: ManagedTransaction) -> tuple[list[str], dict[str, str]]:
        deleted: list[str] = []
        refused: dict[str, str] = {}
        for root in roots:
            try:
                lock_with_parent(tx, root)
                why = _changed(lock_subtree(tx, root), versions)
                if why is not None:
                    refused[root] = why
                    continue
                deleted += delete_subtree(tx, root, actor, "purge")
            except (NotFound, InstanceRunning):
                continue  # deleted meanwhile: nothing of it is purged now
        return deleted, refused

    if hooks.has_before("on_delete"):  # before the write, holding no lock
        hooks.run_before(delete_contexts(roots, None, at, actor, "purge"))
    deleted, refused = lifecycle.repository.write(work)
    hooks.run_after(delete_contexts(deleted, None, at, actor, "purge"))
    return deleted, refused


def _changed(subtree: list[dict[str, Any]], versions: dict[str, int]) -> str | None:
    """Why a locked subtree may not go as judged: an instance in it changed (or is new)."""
    for row in subtree:
        judged = versions.get(row["id"])
        if judged != row["version"]:
            was = "not read" if judged is None else f"not {judged}"
            return (f"changed since purge read it: {row['id']} is at version "
                    f"{row['version']}, {was}")
    return None


def _item(row: dict[str, Any], reason: str) -> PurgeItem:
    archived_at = datetime.fromisoformat(row["archived_at"]) if row["archived_at"] else None
    return PurgeItem(row["id"], row["name"], row["scope"], archived_at, reason)


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
