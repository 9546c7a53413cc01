"""InstanceRepository: the named reads and writes of the instance graph.

Every statement is a named query from ``cypher/``, run through :class:`graph.Graph`. A read
of one statement is one round trip. A write takes no lock but those of the instances it
changes (and their parent, and for a cascade their subtree) and writes its audit events
beside the change, as pending events the feed orders later (``audit``): writers in
different parts of the tree never wait for each other. A create or an update is one
conditional statement after a plain read of what its rules need: the statement checks
under the lock that what the rules saw still holds, and writes only then; when it no
longer holds, the rules run again on what is there now.

Status is never written here: the lifecycle module owns every status change.
"""

from __future__ import annotations

import builtins
import collections
import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeVar

from neo4j import Driver, ManagedTransaction

from hopper_graph import audit, cursors, rules
from hopper_graph.audit import new_event, stored_event
from hopper_graph.batches import Batches
from hopper_graph.enums import HopperScope, InstanceStatus
from hopper_graph.errors import (
    ConcurrentModification,
    DuplicateName,
    DuplicateProject,
    GlobalAlreadyExists,
    HopperGraphError,
    NotFound,
    ValidationError,
)
from hopper_graph.fields import TIME_FIELDS
from hopper_graph.gcpause import gc_paused
from hopper_graph.graph import Graph
from hopper_graph.labels import Requirement, Selector, selector_of
from hopper_graph.models import (
    FlatTreeRow,
    HopperInstance,
    InstanceEvent,
    InstanceSpec,
    Page,
    TreeNode,
)
from hopper_graph.queries import QUERIES, NamedQuery
from hopper_graph.rows import events_from_columns, instance_from_row, instances_from_columns
from hopper_graph.rules import ALL, MAX_SEQ, Expected, check_page, scope_of, status_of
from hopper_graph.statements import (
    check_version,
    delete_subtree,
    lock_with_parent,
    not_found,
    restore_in_progress,
    update_event,
    utcnow,
)

T = TypeVar("T")
BULK_BATCH_SIZE = 5000
PROJECT_PAGE = 5000
"""Instances a project's full listing reads per query."""
REMEMBERED_PARENTS = 1024
"""Parents whose facts a repository keeps for the next create under them, at most."""


class RememberedParents:
    """The facts ``get_parent_for_create`` read of the parents creates went under, the
    most recent REMEMBERED_PARENTS of them, without their children (counted by the write).
    Shared by the threads of a repository."""

    def __init__(self) -> None:
        self._facts: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, parent_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._facts.get(parent_id)

    def remember(self, parent_id: str, facts: dict[str, Any]) -> None:
        with self._lock:
            self._facts[parent_id] = {**facts, "child_count": 0,
                                      "same_scope_sibling_types": []}
            self._facts.move_to_end(parent_id)
            while len(self._facts) > REMEMBERED_PARENTS:
                self._facts.popitem(last=False)

    def forget(self, parent_id: str) -> None:
        with self._lock:
            self._facts.pop(parent_id, None)
WRITE_ATTEMPTS = 5
"""How often a create or update re-reads and tries again when its conditional write finds
the instance (or parent) changed since it was read; then ConcurrentModification."""


def _tree_order(instance: HopperInstance) -> tuple[int, datetime, str]:
    return instance.depth, instance.created_at, instance.id


def _changed_meanwhile(what: str, instance_id: str) -> ConcurrentModification:
    return ConcurrentModification(
        f"{what} {instance_id} kept changing while the write was prepared; try again",
        id=instance_id)


def _check_cursor_or_offset(after: str | None, offset: int) -> bool:
    """Whether a page is asked for by cursor; a cursor and an offset together are refused."""
    if after is not None and offset:
        raise ValidationError("page by after or by offset, not both", errors={
            "offset": ["must be 0 (or left out) when after is given"]})
    return after is not None


def _check_max_depth(max_depth: int | None) -> None:
    if max_depth is not None and not 0 <= max_depth <= ALL:
        raise ValidationError("max_depth is out of range",
                              errors={"max_depth": [f"must be between 0 and {ALL}"]})


_JSON_FIELDS = ("config", "metadata", "labels")
_TIME_FIELDS = TIME_FIELDS


def _lean_rows(row: dict[str, Any], chosen: tuple[str, ...]) -> builtins.list[dict[str, Any]]:
    """The columns of ``get_subtree_fields`` as the flat tree's rows, parents first.

    Column by column, in C where it can be: the order is computed once, each column is
    put in that order by one ``itemgetter`` call, and only timestamps and JSON are
    converted value by value (a call per cell cost a quarter of a 100,000-row tree)."""
    ids, parents, depths = row["id"], row["parent_id"], row["depth"]
    keys = list(zip(depths, map(datetime.fromisoformat, row["created_at"]), ids, strict=True))
    order = [0, *sorted(range(1, len(ids)), key=keys.__getitem__)]
    pick = _picker(order)
    columns = [pick(_lean_column(f, row[f])) for f in chosen]
    above = list(pick(parents))
    above[0] = None  # the root's parent is outside the tree
    base = depths[0]
    cells = zip(*columns, strict=True)
    return [{"instance": dict(zip(chosen, values, strict=True)), "parent_id": parent,
             "depth": depth - base}
            for values, parent, depth in zip(cells, above, pick(depths), strict=True)]


def _picker(order: builtins.list[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """A function that lists a column's values in ``order`` (a one-row tree included)."""
    if len(order) == 1:
        return lambda column: (column[0],)
    return itemgetter(*order)


def _lean_column(field: str, values: builtins.list[Any]) -> builtins.list[Any]:
    """A lean column with its values as JSON-ready as ``HopperInstance.to_dict`` gives them."""
    if field in _TIME_FIELDS:
        return [None if v is None else datetime.fromisoformat(v).isoformat() for v in values]
    if field in _JSON_FIELDS:
        return [None if v is None else json.loads(v) for v in values]
    return values


def _list_query(scope: str | None, status: str | None, parent_id: str | None,
                project_id: str | None, seek: Requirement | None = None) -> NamedQuery:
    """The list query that seeks the index of the most selective filter given: a parent's
    children first (a parent holds few), then a label a selector requires."""
    if parent_id is not None:
        return QUERIES.list_by_parent
    if seek is not None:
        return QUERIES.list_by_label
    if project_id is not None:
        return QUERIES.list_by_project_and_scope if scope else QUERIES.list_by_project
    if scope is not None:
        return QUERIES.list_by_scope_and_status if status else QUERIES.list_by_scope
    return QUERIES.list_by_status if status is not None else QUERIES.list_all


class InstanceRepository:
    """Reads and writes ``HopperInstance`` nodes, their ``PARENT_OF`` edges and events."""

    def __init__(self, driver: Driver | Graph, database: str | None = None,
                 retry_time: float | None = None) -> None:
        """Over a neo4j ``Driver`` (with a Graph of its own on ``database``), or over a
        ``Graph`` shared with others, as the manager shares its Graph with the lifecycle,
        the feed and the health checks (then ``database`` and ``retry_time`` are its)."""
        self.graph = driver if isinstance(driver, Graph) else Graph(driver, database,
                                                                     retry_time)
        self.driver = self.graph.driver
        self.database = self.graph.database
        self.batches = Batches(self.graph)
        """The group-committed writes (transitions without a cascade, heartbeats)."""
        self._parent_facts = RememberedParents()
        """The facts of parents creates went under, for the next create's rules
        (``_plan_create``); the create's statement checks they still hold."""
        self.on_commit: Callable[[builtins.list[dict[str, Any]]], None] | None = None
        """Called after each committed write with the audit events it wrote, as rows
        (``event_from_row`` makes them InstanceEvents once they have their seq)."""

    # -- running statements ---------------------------------------------------------------
    def rows(self, query: str, **params: Any) -> builtins.list[dict[str, Any]]:
        """The rows of one read statement (one round trip)."""
        return self.graph.read_rows(query, **params)

    def row(self, query: str, **params: Any) -> dict[str, Any] | None:
        rows = self.graph.read_rows(query, **params)
        return rows[0] if rows else None

    def write(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work`` in a write transaction (retried on transient errors), then hand the
        audit events it wrote to ``on_commit``: only events that committed are seen."""
        def attempt(tx: ManagedTransaction, *inner: Any) -> T:
            audit.forget_written()  # a retried attempt starts over
            return work(tx, *inner)

        with audit.collecting() as written:
            result = self.graph.write(attempt, *args)
        self.committed(written)
        return result

    def committed(self, events: builtins.list[dict[str, Any]]) -> None:
        """Tell ``on_commit`` about events a write committed."""
        if events and self.on_commit is not None:
            self.on_commit(events)

    def instance(self, row: dict[str, Any]) -> HopperInstance:
        return instance_from_row(row, self)

    def _instances(self, row: dict[str, Any]) -> builtins.list[HopperInstance]:
        """The instances of a record of ``INSTANCE_COLUMNS`` (a many-instance query)."""
        return instances_from_columns(row, self)

    # -- create -------------------------------------------------------------------------
    def create(self, spec: InstanceSpec, actor: str | None = None,
               before_write: Callable[[dict[str, Any]], None] | None = None
               ) -> HopperInstance:
        """Create one instance, validated against every scope rule, with its audit event.

        ``before_write`` sees the validated properties before they are written, outside
        any transaction; raising there creates nothing (the lifecycle's on_create hooks).
        """
        checked = rules.check_spec(spec)
        remembered = checked.parent_id is not None
        for _ in range(WRITE_ATTEMPTS):
            plan = self._plan_create(checked, remembered)
            if before_write is not None:
                before_write(plan.props)
            instance = self._write_create(checked, plan, actor)
            if instance is not None:
                return instance
            self._parent_facts.forget(str(checked.parent_id))
            remembered = False  # the parent changed: read it again
        raise _changed_meanwhile("parent", str(checked.parent_id))

    def _plan_create(self, spec: InstanceSpec, remembered: bool) -> rules.CreatePlan:
        """The create's plan: from the parent's facts as an earlier create read them when
        ``remembered`` and there are some (the write checks they still hold, so a create
        under a known parent is one statement), else from facts read now. Remembered facts
        carry no children (the write counts those under its lock), and a rule they break
        is judged again on facts read now: they may be out of date."""
        if spec.parent_id is None:
            return rules.plan_create(spec, None)
        parent_id = str(spec.parent_id)
        facts = self._parent_facts.get(parent_id) if remembered else None
        if facts is not None:
            try:
                return rules.plan_create(spec, facts)
            except HopperGraphError:
                pass
        facts = self.row(QUERIES.get_parent_for_create.text, parent_id=parent_id,
                         scope=HopperScope(spec.scope).value)
        if facts is not None and "id" not in facts["parent"]:
            facts = None  # deleted as it was read: read-committed shows no properties
        if facts is None or facts["restoring"]:
            self._parent_facts.forget(parent_id)
        else:
            self._parent_facts.remember(parent_id, facts)
        return rules.plan_create(spec, facts)

    def _write_create(self, spec: InstanceSpec, plan: rules.CreatePlan,
                      actor: str | None) -> HopperInstance | None:
        """The create's one statement; None when the parent changed since it was read."""
        now = utcnow()
        event = new_event(plan.props["id"], "create", None, "CREATED", now, actor=actor)
        if plan.parent_id is None:
            try:
                row = self.graph.write_rows(QUERIES.create_global_instance.text,
                                            props=plan.props,
                                            label_pairs=rules.label_pairs(plan.props) or [],
                                            now=now,
                                            event=stored_event(event))[0]
            except (GlobalAlreadyExists, DuplicateName):  # either constraint can trip
                raise self._global_exists() from None
        else:
            try:
                found = self.graph.write_rows(
                    QUERIES.create_child_instance.text, props=plan.props,
                    label_pairs=rules.label_pairs(plan.props) or [],
                    scope=plan.props["scope"], parent_id=plan.parent_id,
                    parent_version=plan.parent_version, global_version=plan.global_version,
                    limit=plan.limit,
                    singleton=plan.props["instance_type"] == "SINGLETON",
                    top_project=plan.top_project, now=now, event=stored_event(event))
            except DuplicateProject:  # the constraint names no instance: look it up
                raise self._duplicate_project(str(plan.props["project_id"])) from None
            except DuplicateName:
                raise self.taken_name(spec.name, plan.props["scope"]) from None
            if not found:  # deleted since it was read
                self._parent_facts.forget(str(plan.parent_id))
                rules.plan_create(spec, None)
            row = found[0]
            if row["instance"] is None:
                _refused_create(spec, plan, row)
                return None
        self.committed([event])
        return self.instance(row["instance"])

    def _global_exists(self) -> GlobalAlreadyExists:
        """The error for a second GLOBAL, naming the one there is (read after the refused
        write, which saw no committed instance: an error path may spend a read)."""
        found = self.get_global_instance()
        if found is None:  # deleted since the constraint refused the create
            return GlobalAlreadyExists("a GLOBAL instance already existed (since deleted)")
        return GlobalAlreadyExists(
            f"a GLOBAL instance already exists: {found.id} ({found.name})",
            existing_id=found.id)

    def taken_name(self, name: str, scope: HopperScope | str) -> DuplicateName:
        """The error for a (name, scope) the constraint refused, naming the instance that
        holds it (read after the refused write)."""
        scope, name = scope_of(scope).value, rules.nfc(name)
        row = self.row(QUERIES.get_instance_by_scope_and_name.text, scope=scope, name=name)
        holder = row["instance"]["id"] if row else None
        by = f" by instance {holder}" if holder else ""
        return DuplicateName(f"{rules.with_article(scope)} instance named {name!r} already "
                             f"exists{': ' + holder if holder else ''}",
                             errors={"name": [f"already taken in scope {scope}{by}"]},
                             name=name, scope=scope, existing_id=holder)

    def _duplicate_project(self, project_id: str) -> DuplicateProject:
        """The error for a second top-level PROJECT of ``project_id``, naming the one that
        holds it (read after the failed transaction, which saw no committed instance)."""
        row = self.row(QUERIES.get_top_project.text, project_id=project_id)
        if row is None:  # deleted since the constraint refused the create
            return DuplicateProject(f"project {project_id!r} already had a PROJECT instance",
                                    errors={"project_id": ["already has a PROJECT instance"]},
                                    project_id=project_id)
        return DuplicateProject(
            f"project {project_id!r} already has a PROJECT instance: {row['id']} "
            f"({row['name']})", errors={"project_id": [
                f"already has a PROJECT instance: {row['id']}"]},
            project_id=project_id, existing_id=row["id"])

    def bulk_create(self, specs: Sequence[InstanceSpec], actor: str | None = None,
                    batch_size: int = BULK_BATCH_SIZE,
                    before_write: Callable[[builtins.list[InstanceSpec]], None] | None = None
                    ) -> builtins.list[str]:
        """Create a whole hierarchy in one transaction of batched writes; returns the ids.

        Parents come before their children: each ``parent_id`` names an instance already in
        the graph or one earlier in ``specs``. Every rule of :meth:`create` applies, counted
        over the graph and the batch together; any violation creates nothing.
        ``before_write`` sees the checked specs (ids assigned) before the transaction.
        """
        checked = [rules.check_spec(spec) for spec in specs]
        rules.check_unique_within(checked)
        if before_write is not None:
            before_write(checked)

        def work(tx: ManagedTransaction) -> builtins.list[str]:
            now = utcnow()
            parents = [dict(r) for r in tx.run(
                QUERIES.bulk_lock_parents.text,
                parent_ids=rules.BulkPlanner.external_parents(checked))]
            config = tx.run(QUERIES.get_global_config.text).single()
            rows = rules.BulkPlanner(parents, config["config"] if config else None
                                     ).plan(checked)
            if not rows:
                return []
            events = [new_event(r["props"]["id"], "create", None, "CREATED", now,
                                actor=actor, offset=index)
                      for index, r in enumerate(rows, 1)]
            for row, event in zip(rows, events, strict=True):
                row["event"] = stored_event(event)
                row["label_pairs"] = rules.label_pairs(row["props"])
            for start in range(0, len(rows), batch_size):
                tx.run(QUERIES.bulk_create_instances.text, rows=rows[start:start + batch_size],
                       now=now).consume()
            audit.record_written(events)
            return [r["props"]["id"] for r in rows]

        return self.write(work)

    # -- reads --------------------------------------------------------------------------
    def find(self, instance_id: str) -> HopperInstance | None:
        """The instance with this id, or None."""
        row = self.row(QUERIES.get_instance.text, id=instance_id)
        return self.instance(row["instance"]) if row else None

    def get(self, instance_id: str) -> HopperInstance:
        """The instance with this id; NotFound if there is none."""
        instance = self.find(instance_id)
        if instance is None:
            raise not_found(instance_id)
        return instance

    def find_by_scope_and_names(self, keys: builtins.list[dict[str, str]]
                                ) -> builtins.list[HopperInstance]:
        """The instances named by ``keys`` (``{"scope", "name"}`` maps) that exist, in one
        query."""
        keys = [{**key, "name": rules.nfc(key.get("name"))} for key in keys]
        rows = self.rows(QUERIES.get_instances_by_scope_and_name.text, keys=keys)
        return [self.instance(row["instance"]) for row in rows]

    def get_by_scope_and_name(self, scope: HopperScope | str, name: str) -> HopperInstance:
        scope = scope_of(scope)
        row = self.row(QUERIES.get_instance_by_scope_and_name.text, scope=scope.value,
                             name=rules.nfc(name))  # names are stored in NFC
        if row is None:
            raise NotFound(f"no {scope.value} instance named {name!r}", scope=scope.value,
                           name=name)
        return self.instance(row["instance"])

    def list(self, *, scope: HopperScope | str | None = None,
             status: InstanceStatus | str | None = None, parent_id: str | None = None,
             project_id: str | None = None, offset: int = 0, limit: int = 100,
             after: str | None = None, within: str | None = None,
             selector: Selector | str | None = None) -> Page:
        """A page of instances matching every given filter, in creation order.

        ``selector`` (labels.py: text like ``team=infra,!legacy``, or a Selector) keeps
        the instances whose labels it matches; one with an ``=`` or ``in`` requirement
        reads that label's instances from their index, so the page still costs the page.

        Page by cursor: pass ``after=page.next`` (``cursors.FIRST`` for the first page);
        each page then costs its own rows, from the index of its most selective filter.
        With ``offset`` (no ``after``) the page also counts every match (``total``), which
        costs them all: kept for compatibility. ``within``: only the subtree of that
        instance (a scoped token's view), which walks that subtree."""
        check_page(offset, limit)
        by_cursor = _check_cursor_or_offset(after, offset)
        filters = {"scope": scope_of(scope).value if scope is not None else None,
                   "status": status_of(status).value if status is not None else None,
                   "parent_id": parent_id, "project_id": rules.nfc(project_id)}
        chosen = selector_of(selector)
        bound = cursors.bound("instances", *filters.values(), within, chosen.params())
        after_at, after_id = cursors.created_after(after, bound)  # its cursors page it alone
        seek = chosen.seek
        query = QUERIES.list_in_subtree if within is not None else _list_query(
            **filters, seek=seek)
        extra: dict[str, Any] = {} if within is None else {"root": within}
        if query is QUERIES.list_by_label and seek is not None:
            extra.update(label_key=seek.key, label_values=list(seek.values))
        row = self.row(query.text, **filters, **extra, selector=chosen.params(),
                       after_at=after_at, after_id=after_id, skip=0 if by_cursor else offset,
                       limit=limit + 1, with_total=not by_cursor)
        assert row is not None  # an aggregation always answers
        return self._created_page(row, offset, limit, bound)

    def _created_page(self, row: dict[str, Any], offset: int, limit: int,
                      bound: str) -> Page:
        """A page from one more row than asked for: that one says whether more follow;
        its cursor pages the list ``bound`` names."""
        items = self._instances(row)
        more = len(items) > limit
        items = items[:limit]
        last = items[-1] if more and items else None
        return Page(items, row["total"], offset, limit,
                    None if last is None else
                    cursors.encode(cursors.CREATED, last.created_at, last.id, bound=bound))

    # -- hierarchy ----------------------------------------------------------------------
    def get_children(self, parent_id: str, offset: int = 0,
                     limit: int | None = None) -> builtins.list[HopperInstance]:
        """The direct children of an instance, in creation order."""
        return self.children_page(parent_id, offset, limit).items

    def children_page(self, parent_id: str, offset: int = 0, limit: int | None = None,
                      after: str | None = None, selector: Selector | str | None = None
                      ) -> Page:
        """A page of an instance's children in creation order, with how many it has (a
        degree lookup); by cursor (``after``) or by offset, each costing the page. With a
        ``selector`` only the children it matches (the total, by offset, counts those)."""
        chosen = selector_of(selector)
        if chosen:
            self.get(parent_id)  # NotFound for a parent that is not there
            return self.list(parent_id=parent_id, offset=offset,
                             limit=ALL if limit is None else limit,
                             after=after, selector=chosen)
        check_page(offset, limit)
        by_cursor = _check_cursor_or_offset(after, offset)
        bound = cursors.bound("children", parent_id)
        after_at, after_id = cursors.created_after(after, bound)
        size = ALL if limit is None else limit
        row = self.row(QUERIES.get_children.text, parent_id=parent_id, after_at=after_at,
                       after_id=after_id, skip=0 if by_cursor else offset,
                       limit=min(size + 1, ALL))
        if row is None:
            raise not_found(parent_id)
        return self._created_page(row, offset, size, bound)

    def get_ancestors(self, instance_id: str) -> builtins.list[HopperInstance]:
        """The parent, its parent, and so on up to the root: nearest first."""
        row = self.row(QUERIES.get_ancestors.text, id=instance_id)
        if row is None:
            raise not_found(instance_id)
        return self._instances(row)

    def get_descendants(self, instance_id: str) -> builtins.list[HopperInstance]:
        """Everything below an instance, level by level (creation order within a level).

        The flat tree's read without its root: one walk, sorted here. The descendants
        page query would walk the subtree twice (its rows and its total) and sort it at
        the server, for the same list."""
        return self._subtree(instance_id)[1]

    def descendants_page(self, instance_id: str, offset: int = 0,
                         limit: int | None = None, after: str | None = None,
                         selector: Selector | str | None = None) -> Page:
        """A page of everything below an instance, level by level (creation order within a
        level); by cursor (``after``, no total) or by offset (with the total). With a
        ``selector`` only the instances it matches."""
        check_page(offset, limit)
        by_cursor = _check_cursor_or_offset(after, offset)
        bound = cursors.bound("descendants", instance_id)
        after_depth, after_at, after_id = cursors.level_after(after, bound)
        size = ALL if limit is None else limit
        chosen = selector_of(selector)
        params = {"id": instance_id, "after_depth": after_depth, "after_at": after_at,
                  "after_id": after_id, "skip": 0 if by_cursor else offset,
                  "limit": min(size + 1, ALL), "with_total": not by_cursor}
        row = self.row(QUERIES.get_descendants_selected.text, selector=chosen.params(),
                       **params) if chosen else self.row(QUERIES.get_descendants.text, **params)
        if row is None:
            raise not_found(instance_id)
        items = self._instances(row)
        last = items[size - 1] if len(items) > size else None
        return Page(items[:size], row["total"], offset, size, None if last is None else
                    cursors.encode(cursors.LEVEL, last.depth, last.created_at, last.id,
                                   bound=bound))

    def get_flat_tree(self, root_id: str, max_depth: int | None = None,
                      selector: Selector | str | None = None) -> builtins.list[FlatTreeRow]:
        """The subtree as rows (instance, parent_id, depth below the root), parents first.
        With a label ``selector``, only the rows of the instances it matches (the root too
        only if it matches; each row keeps its parent_id and depth as in the whole tree):
        the subtree is read whole, a selector narrows the answer."""
        _check_max_depth(max_depth)
        chosen = selector_of(selector)
        root, below = self._subtree(root_id, max_depth)
        base = root.depth
        with gc_paused():
            rows = [FlatTreeRow(root, None, 0), *(FlatTreeRow(i, i.parent_id, i.depth - base)
                                                  for i in below)]
        if chosen:
            rows = [r for r in rows if chosen.matches(r.instance.labels)]
        return rows

    def _subtree(self, root_id: str, max_depth: int | None = None
                 ) -> tuple[HopperInstance, builtins.list[HopperInstance]]:
        """The instance and everything below it (down to ``max_depth`` levels), the rest
        sorted parents first, in creation order within a level."""
        row = self.row(QUERIES.get_subtree.text, id=root_id) if max_depth is None else \
            self.row(QUERIES.get_subtree_to_depth.text, id=root_id, max_depth=max_depth)
        assert row is not None  # an aggregation always answers: empty lists for no root
        instances = self._instances(row)
        if not instances or instances[0].id != root_id:  # no root, or deleted as we read
            raise not_found(root_id)
        root, below = instances[0], instances[1:]  # the query's first row is the root
        below.sort(key=_tree_order)
        return root, below

    def get_tree_fields(self, root_id: str, fields: Sequence[str],
                        max_depth: int | None = None, selector: Selector | str | None = None
                        ) -> builtins.list[dict[str, Any]]:
        """A lean subtree: rows ``{"instance": {field: value}, "parent_id", "depth"}`` with
        only ``fields`` of each instance (``id`` always), parents first, creation order
        within a level, as ``get_flat_tree`` gives them. Values are JSON-ready, as in
        ``HopperInstance.to_dict``."""
        chosen = rules.check_fields(["id", *fields])
        _check_max_depth(max_depth)
        select = selector_of(selector)
        wanted = list(dict.fromkeys(("id", "parent_id", "depth", "created_at", *chosen,
                                     *(["labels"] if select else []))))
        row = self.row(QUERIES.get_subtree_fields.text, id=root_id, fields=wanted) \
            if max_depth is None else self.row(QUERIES.get_subtree_fields_to_depth.text,
                                               id=root_id, max_depth=max_depth, fields=wanted)
        if row is None or not row["id"] or row["id"][0] != root_id:
            raise not_found(root_id)
        if not select:
            with gc_paused():
                return _lean_rows(row, chosen)
        with gc_paused():
            rows = _lean_rows(row, tuple(dict.fromkeys((*chosen, "labels"))))
        kept = [r for r in rows if select.matches(r["instance"]["labels"] or {})]
        if "labels" not in chosen:
            for r in kept:
                del r["instance"]["labels"]
        return kept

    def get_instance_tree(self, root_id: str, max_depth: int | None = None) -> TreeNode:
        """The subtree as nested TreeNodes, assembled without recursion (any depth works)."""
        rows = self.get_flat_tree(root_id, max_depth)
        with gc_paused():
            nodes = {row.instance.id: TreeNode(row.instance) for row in rows}
            for row in rows[1:]:
                parent = nodes.get(row.parent_id)  # type: ignore[arg-type]
                if parent is not None:  # absent only if deleted while we read
                    parent.children.append(nodes[row.instance.id])
        return nodes[rows[0].instance.id]

    # -- scope and status ---------------------------------------------------------------
    def get_global_instance(self) -> HopperInstance | None:
        row = self.row(QUERIES.get_global_instance.text)
        return self.instance(row["instance"]) if row else None

    def get_project_instances(self, project_id: str) -> builtins.list[HopperInstance]:
        """The PROJECT instances (sub-projects included) that carry ``project_id``."""
        return self._in_project(project_id, HopperScope.PROJECT)

    def get_orchestration_instances(self, project_id: str) -> builtins.list[HopperInstance]:
        """The ORCHESTRATION instances that belong to ``project_id``."""
        return self._in_project(project_id, HopperScope.ORCHESTRATION)

    def _in_project(self, project_id: str, scope: HopperScope) -> builtins.list[HopperInstance]:
        """Every instance of a project in one scope, page by page (each from the index)."""
        items: builtins.list[HopperInstance] = []
        after: str | None = cursors.FIRST
        while after is not None:
            page = self.list(project_id=project_id, scope=scope, limit=PROJECT_PAGE,
                             after=after)
            items += page.items
            after = page.next
        return items

    def get_active_instances(self) -> builtins.list[HopperInstance]:
        return self.get_instances_by_status(InstanceStatus.ACTIVE)

    def get_instances_by_status(self,
                                status: InstanceStatus | str) -> builtins.list[HopperInstance]:
        row = self.row(QUERIES.get_instances_by_status.text, status=status_of(status).value)
        assert row is not None  # an aggregation always answers
        return self._instances(row)

    # -- update and delete ----------------------------------------------------------------
    def update(self, instance_id: str, *, name: str | None = None,
               config: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
               replace: bool = False, expected_version: Expected = None,
               actor: str | None = None,
               labels: dict[str, str | None] | None = None) -> HopperInstance:
        """Change name, config, metadata and/or labels. Config, metadata and labels merge
        into what is stored (nested maps merge, a None value removes a key) unless
        ``replace``.

        One conditional write: the changes are computed from the instance as read and
        written only if it is still at that version (else computed again, unless the caller
        pinned ``expected_version``)."""
        if name is not None:
            rules.check_name(name)
        if metadata is not None:
            rules.check_metadata(metadata)
        for _ in range(WRITE_ATTEMPTS):
            current = self._stored(instance_id)
            check_version(current, expected_version)
            changes = rules.field_changes(current, name, config, metadata, replace, labels)
            if not changes:
                return self.instance(current)
            try:
                row = self._write_update(current, changes, actor)
            except DuplicateName:
                raise self.taken_name(changes["name"], current["scope"]) from None
            if row["applies"]:
                return self.instance(row["instance"])
            if row["restoring"]:
                raise restore_in_progress(instance_id)
            check_version(row["instance"], expected_version)
            if row["instance"]["version"] == current["version"]:  # the limit refused it
                rules.check_lowered_limit(instance_id, row["child_count"],
                                          rules.new_child_limit(changes))
        raise _changed_meanwhile("instance", instance_id)

    def _stored(self, instance_id: str) -> dict[str, Any]:
        row = self.row(QUERIES.get_instance.text, id=instance_id)
        if row is None:
            raise not_found(instance_id)
        stored: dict[str, Any] = row["instance"]
        return stored

    def _write_update(self, current: dict[str, Any], changes: dict[str, Any],
                      actor: str | None) -> dict[str, Any]:
        now = utcnow()
        event = update_event(current, changes, now, actor)
        row = self.batches.update({"id": current["id"], "version": current["version"],
                                   "changes": changes, "now": now.isoformat(),
                                   "event": stored_event(event),
                                   "max_children": rules.new_child_limit(changes),
                                   "label_pairs": rules.label_pairs(changes)})
        if row is None:
            raise not_found(current["id"])
        if row["applies"]:
            self.committed([event])
        return row

    def delete(self, instance_id: str, expected_version: Expected = None,
               actor: str | None = None, reason: str | None = None) -> builtins.list[str]:
        """Delete an instance and its subtree; refused while anything in it is ACTIVE or
        PAUSED (the lifecycle manager's ``delete(force=True)`` stops them first). The audit
        history stays. Returns the deleted ids, deepest first."""
        def work(tx: ManagedTransaction) -> builtins.list[str]:
            lock_with_parent(tx, instance_id, expected_version)
            return delete_subtree(tx, instance_id, actor, reason)
        return self.write(work)

    def record_heartbeat(self, instance_id: str) -> HopperInstance:
        """Stamp ``heartbeat_at`` (it writes nothing to an ARCHIVED instance), in the batch of
        heartbeats it joins (group commit); the instance as it is afterwards."""
        row = self.batches.heartbeat(instance_id, utcnow())
        if row is None:
            raise not_found(instance_id)
        return self.instance(row["instance"])

    def write_transition(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """One row of ``transition_instances`` (id, event, edges, expected_version,
        needs_active_parent, cascades, now, event_ids, actor, reason), written in the batch
        of transitions it joins (group commit): the statement's row for it, or None when
        there is no such instance."""
        return self.batches.transition(row)

    # -- audit ----------------------------------------------------------------------------
    def get_history(self, instance_id: str, offset: int = 0,
                    limit: int | None = None) -> builtins.list[InstanceEvent]:
        """The audit events of an instance, oldest first (also after it was deleted);
        NotFound, at any offset, for an id that never had any."""
        return self.history_page(instance_id, offset, limit).items

    def history_page(self, instance_id: str, offset: int = 0, limit: int | None = None,
                     after: str | None = None) -> Page:
        """A page of an instance's audit events, oldest first, by cursor (``after``) or by
        offset; ``next`` continues it. No total: counting would cost every event."""
        check_page(offset, limit)
        by_cursor = _check_cursor_or_offset(after, offset)
        size = ALL if limit is None else limit
        bound = cursors.bound("history", instance_id)
        params = {"instance_id": instance_id, "after_seq": cursors.seq_after(after, bound),
                  "skip": 0 if by_cursor else offset, "limit": min(size + 1, ALL)}
        row = self.row(QUERIES.get_history.text, **params)
        assert row is not None  # an aggregation always answers
        if row["pending"]:  # some of its events wait for their seq: number them first
            audit.sequence_all(self.graph)
            row = self.row(QUERIES.get_history.text, **params)
            assert row is not None
        if not row["known"]:
            raise not_found(instance_id)
        events = events_from_columns(row)
        last = events[size - 1] if len(events) > size else None
        return Page(events[:size], None, offset, size,
                    None if last is None else cursors.encode(cursors.SEQ, last.seq,
                                                             bound=bound))

    def events_since(self, after: int = 0, limit: int = 100) -> builtins.list[InstanceEvent]:
        """The change feed: events with ``seq`` greater than ``after``, in order. Events
        committed but not yet numbered are numbered first (see ``audit``)."""
        check_page(0, limit)
        if not 0 <= after <= MAX_SEQ:
            raise ValidationError("after is out of range",
                                  errors={"after": [f"must be between 0 and {MAX_SEQ}"]})
        if audit.pending(self.graph)[0]:
            audit.sequence(self.graph)
        row = self.row(QUERIES.events_since.text, after=after, limit=limit)
        assert row is not None  # an aggregation always answers
        return events_from_columns(row)

    def sequence_events(self) -> int:
        """Number every committed event still waiting for its seq; how many it numbered."""
        return audit.sequence_all(self.graph)


def _refused_create(spec: InstanceSpec, plan: rules.CreatePlan, row: dict[str, Any]) -> None:
    """Why ``create_child_instance`` wrote nothing: a rule (raised), or a parent that
    changed since the rules saw it (returns: plan again)."""
    if row["restoring"]:
        raise restore_in_progress(str(plan.parent_id))
    if (row["parent_version"], row["global_version"]) != (plan.parent_version,
                                                          plan.global_version):
        return
    rules.check_parent_counts(spec, str(plan.parent_id), row["child_count"],
                              row["same_scope_sibling_types"], plan.limit)
