"""Purge: delete the ARCHIVED EPHEMERAL instances whose retention has passed.

An instance is purgeable when it is EPHEMERAL and ARCHIVED, its ``retention.purge_archived``
is true, and it was archived longer ago than its ``retention.archived_ttl_seconds`` (or than
``older_than``, which replaces the TTL but never overrides ``purge_archived: false``).
Deleting an instance deletes its subtree, so a purgeable instance goes only when every
instance below it is purgeable too; otherwise it is kept, and the report says which
descendant keeps it. Nothing that is not itself purgeable is ever deleted, and an instance
with a lien (``liens``) is not purgeable: it stays, with its ancestors, until the lien goes.

A run examines at most ``limit`` candidates, oldest archive first, in pages of ``batch``
read by an index in that order, each page going on after the last candidate examined, and
deletes in transactions of at most ``batch`` instances, each with its ``delete`` audit
events: its cost follows what it examines and deletes, not the size of the archive. A run
that stops at ``limit`` with candidates left says so (``more``) and returns a ``cursor``;
``after=cursor`` goes on from there, past candidates kept at the front of the archive.
History survives, as for every delete. The verdicts are read without locks; the delete
locks each subtree and goes ahead only if no instance in it changed since (its version),
so a PATCH that pins a run meanwhile keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson
from neo4j import ManagedTransaction

from hopper_graph import cursors
from hopper_graph.errors import InstanceProtected, InstanceRunning, NotFound, ValidationError
from hopper_graph.hooks import HookRegistry, delete_contexts
from hopper_graph.queries import QUERIES
from hopper_graph.repository import InstanceRepository
from hopper_graph.statements import delete_subtree, lock_subtree, lock_with_parent, utcnow

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
    """What a purge deleted (with ``dry_run``: would delete) and what it kept, with why.

    ``more`` says the run stopped at its ``limit`` with candidates left; ``cursor`` then
    names the last one examined: pass it as ``after`` to go on from there."""

    dry_run: bool
    purged: list[PurgeItem]
    kept: list[PurgeItem]
    more: bool = False
    cursor: str | None = None


def purge(repository: InstanceRepository, hooks: HookRegistry,
          older_than: timedelta | None = None, *, dry_run: bool = False,
          actor: str | None = None, limit: int = DEFAULT_LIMIT,
          batch: int = DEFAULT_BATCH, after: str | None = None,
          progress: Callable[[int, int | None], None] | None = None,
          within: str | None = None) -> PurgeReport:
    """Purge what is purgeable (see the module docstring); ``dry_run`` deletes nothing.
    ``progress(examined, None)`` hears each page done (how many candidates remain is not
    known without a count the purge does not need). ``within``: only candidates in the
    subtree of that instance (a scoped token's purge); the others are passed over, neither
    purged nor reported, though they count as examined."""
    if limit < 1 or batch < 1:
        raise ValidationError("limit and batch must be at least 1", errors={
            "limit" if limit < 1 else "batch": ["must be at least 1"]})
    run = _Run(repository, hooks, utcnow(), older_than, dry_run, actor, batch)
    position, examined, more = decode_cursor(after), 0, False
    while examined < limit:
        size = min(batch, limit - examined)
        rows = repository.rows(QUERIES.find_purge_candidates.text, **position,
                               limit=size + 1)
        more = len(rows) > size  # one more than asked for: are there candidates left?
        rows = rows[:size]
        if not rows:
            break
        run.page(rows if within is None else _in_subtree(repository, rows, within))
        examined += len(rows)
        if progress is not None:
            progress(examined, None)
        position = _position(rows[-1])
        if not more:
            break
    cursor = encode_cursor(position) if more else None
    return PurgeReport(dry_run, run.purged, run.kept, more, cursor)


class _Run:
    """One purge: its verdicts outlive a page, so a page's parents see the children that
    earlier pages examined (a parent comes after its descendants: see the query)."""

    def __init__(self, repository: InstanceRepository, hooks: HookRegistry, now: datetime,
                 older_than: timedelta | None, dry_run: bool, actor: str | None,
                 batch: int) -> None:
        self.repository, self.hooks = repository, hooks
        self.now, self.older_than = now, older_than
        self.dry_run, self.actor, self.batch = dry_run, actor, batch
        self.verdicts: dict[str, tuple[bool, str]] = {}
        self.purged: list[PurgeItem] = []
        self.kept: list[PurgeItem] = []

    def page(self, rows: list[dict[str, Any]]) -> None:
        """Judge a page of candidates, then delete (or with dry_run list) what may go."""
        verdicts = self.verdicts
        for row in rows:
            verdicts[row["id"]] = _own_verdict(row, self.now, self.older_than)
        _keep_parents_of_kept(rows, verdicts)
        items = {row["id"]: _item(row, verdicts[row["id"]][1]) for row in rows}
        going = {row["id"] for row in rows if verdicts[row["id"]][0]}
        self.kept += [items[row["id"]] for row in rows if row["id"] not in going]
        if self.dry_run:
            self.purged += [items[row["id"]] for row in rows if row["id"] in going]
            return
        roots = [row["id"] for row in rows
                 if row["id"] in going and row["parent_id"] not in going]
        children = {row["id"]: [c[0] for c in row["children"]] for row in rows}
        versions = {row["id"]: row["version"] for row in rows}
        for group in _batches(roots, _sizes(rows, verdicts), self.batch):
            deleted, refused = _delete(self.repository, self.hooks, group, versions,
                                       self.actor)
            self.purged += [items[i] for i in deleted if i in items]
            for root, why in refused.items():
                for i in _subtree(root, children):
                    verdicts[i] = (False, why)
                    if i in items:
                        self.kept.append(replace(items[i], reason=why))


def _in_subtree(repository: InstanceRepository, rows: list[dict[str, Any]],
                root: str) -> list[dict[str, Any]]:
    """The candidates in the subtree of ``root``: every descendant of one of them is in it
    too, so the verdicts on parents stay whole."""
    members = {row["id"] for row in repository.rows(
        QUERIES.get_subtree_members.text, root=root, ids=[r["id"] for r in rows])
        if row["member"]}
    return [row for row in rows if row["id"] in members]


def _position(row: dict[str, Any]) -> dict[str, Any]:
    """Where the next page starts: after this candidate, in the query's order."""
    return {"after_at": row["archived_at"], "after_depth": row["depth"],
            "after_id": row["id"]}


def encode_cursor(position: dict[str, Any]) -> str:
    """An opaque cursor for ``after``: the position of the last candidate examined."""
    return cursors.encode(cursors.ARCHIVED, position["after_at"], position["after_depth"],
                          position["after_id"])


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    """The position a cursor from :func:`encode_cursor` names; the start for None."""
    at, depth, instance_id = cursors.archived_after(cursor)
    return {"after_at": at, "after_depth": depth, "after_id": instance_id}


def _own_verdict(row: dict[str, Any], now: datetime, older_than: timedelta | None
                 ) -> tuple[bool, str]:
    if row.get("liens"):
        return False, f"protected by {len(row['liens'])} lien(s): " + "; ".join(
            repr(reason) for reason in row["liens"])
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
                if child is None and (kind, status) == ("EPHEMERAL", "ARCHIVED"):
                    why = f"has a descendant this run did not examine: {child_id}"
                elif child is None:
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


def _delete(repository: InstanceRepository, hooks: HookRegistry, roots: list[str],
            versions: dict[str, int], actor: str | None) -> tuple[list[str], dict[str, str]]:
    """Delete the subtrees of ``roots`` in one transaction, with their hooks and events.

    The verdicts came from a read without locks: a PATCH since then may have made an
    instance not purgeable (``purge_archived: false``). So under the subtree's locks, a
    subtree goes only if every instance in it is still at the version that was judged
    (``versions``); else it stays, and the second value says why, per root."""
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
                deleted += delete_subtree(tx, root, actor, "purge", action="purge")
            except (NotFound, InstanceRunning):
                continue  # deleted meanwhile: nothing of it is purged now
            except InstanceProtected as exc:  # a lien came since the verdict
                refused[root] = exc.message
        return deleted, refused

    if hooks.has_before("on_delete"):  # before the write, holding no lock
        hooks.run_before(delete_contexts(roots, None, at, actor, "purge"))
    deleted, refused = repository.write(work)
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
