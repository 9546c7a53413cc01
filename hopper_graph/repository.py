"""InstanceRepository: every read and write of the instance graph.

Reads run in read sessions and writes as write transactions (so a ``neo4j://`` cluster
routes them right). A single-statement read is an auto-commit transaction, retried here;
writes go through ``execute_write``, which retries transient failures. Every query is a
named query from ``cypher/``; each hierarchy read is one round trip. Every write first
takes the audit counter's lock (``lock_writes``), so writers run one at a time; writes that
depend on the graph's state also lock the node they depend on before reading it (Neo4j is
read-committed), and rely on uniqueness constraints for what no lock can cover (a second
GLOBAL, a duplicate name).

Status is never written here: the lifecycle module owns every status change.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from neo4j import READ_ACCESS, Driver, ManagedTransaction, Record
from neo4j.exceptions import (
    ConstraintError,
    DriverError,
    Neo4jError,
    ResultFailedError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from hopper_graph import config as scope_config
from hopper_graph.enums import (
    ALLOWED_PARENT_SCOPES,
    DEFAULT_INSTANCE_TYPE,
    HopperScope,
    InstanceStatus,
    InstanceType,
)
from hopper_graph.errors import (
    ConcurrentModification,
    Conflict,
    DatabaseUnavailable,
    DuplicateName,
    GlobalAlreadyExists,
    InstanceRunning,
    LimitExceeded,
    NotFound,
    ParentArchived,
    ScopeRuleViolation,
    ValidationError,
)
from hopper_graph.models import (
    FlatTreeRow,
    HopperInstance,
    InstanceEvent,
    InstanceSpec,
    Page,
    TreeNode,
    events_from_columns,
    gc_paused,
    instance_from_row,
    instances_from_columns,
)
from hopper_graph.queries import QUERIES, NamedQuery

T = TypeVar("T")
_APPENDED: ContextVar[list[dict[str, Any]] | None] = ContextVar("_APPENDED", default=None)
"""The events appended by the write transaction running in this context."""
ALL = 2**30
"""A limit that means no limit (Cypher takes no null there; list slices need 32 bits)."""
MAX_NAME_LENGTH = 255
MAX_NESTING = 64
"""How deep config and metadata may nest: deeper input is refused, never recursed into."""
MAX_SEQ = 2**63 - 1
BULK_BATCH_SIZE = 5000


def not_found(instance_id: str) -> NotFound:
    return NotFound(f"no instance with id {instance_id}", id=instance_id)


def _plain(record: Record) -> dict[str, Any]:
    """A record as a dict, as it came off the wire.

    The named queries return map projections and lists, never Node objects, so nothing
    needs the recursive conversion of ``Record.data()``, which cost more than half of
    reading a 5,000-instance chain.
    """
    return dict(zip(record.keys(), record.values(), strict=True))


RETRY_FIRST_PAUSE = 0.05
RETRY_MAX_PAUSE = 1.0


def _retry_time(driver: Driver) -> float:
    """The driver's ``max_transaction_retry_time``; the driver has no public accessor."""
    config = getattr(driver, "_default_workspace_config", None)
    return float(getattr(config, "max_transaction_retry_time", 30.0))


def _tree_order(instance: HopperInstance) -> tuple[int, datetime, str]:
    return instance.depth, instance.created_at, instance.id


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_event(instance_id: str, event: str, from_status: str | None, to_status: str | None,
              at: datetime, actor: str | None = None, reason: str | None = None,
              cause: str | None = None) -> dict[str, Any]:
    """An audit event as ``append_events`` takes it."""
    check_text("actor", actor)
    check_text("reason", reason)
    return {"id": str(uuid.uuid4()), "instance_id": instance_id, "event": event,
            "from_status": from_status, "to_status": to_status, "actor": actor,
            "reason": reason, "cause": cause, "at": at}


def _retryable_cause(exc: ResultFailedError) -> Exception:
    """The error to hand the driver for a result that failed because of another one.

    When the server fails one statement of a transaction (a deadlock, say), reading any
    other result of it raises ResultFailedError, which the driver does not retry; its cause
    is the server's error, which it does retry when it is transient."""
    cause = exc.__cause__
    if isinstance(cause, Neo4jError) and cause.is_retryable():
        return cause
    return exc


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Driver exceptions become the library's: constraint hits and unreachable servers."""
    try:
        yield
    except ConstraintError as exc:
        message = exc.message or ""
        # Two GLOBALs with the same name may trip the (name, scope) constraint before the
        # GlobalInstance one; either way it is a second GLOBAL.
        if "GlobalInstance" in message or "`scope` = 'GLOBAL'" in message:
            raise GlobalAlreadyExists("a GLOBAL instance already exists") from None
        if "`name`" in message:
            raise DuplicateName("an instance with this name and scope already exists",
                                errors={"name": ["already taken in this scope"]}) from None
        if "`id`" in message:
            raise Conflict("an instance with this id already exists",
                           errors={"id": ["already taken"]}) from None
        raise
    except (ServiceUnavailable, SessionExpired) as exc:
        raise DatabaseUnavailable(f"Neo4j is unavailable: {type(exc).__name__}") from None
    except TransientError as exc:
        raise DatabaseUnavailable(f"Neo4j could not complete the request: {exc.code}") from None
    except DriverError as exc:
        raise DatabaseUnavailable(f"Neo4j driver error: {type(exc).__name__}") from None


@dataclass(frozen=True, slots=True)
class _Plan:
    """A validated create: the properties to write and the parent to attach to."""

    props: dict[str, Any]
    parent_id: str | None


class InstanceRepository:
    """Reads and writes ``HopperInstance`` nodes, their ``PARENT_OF`` edges and events."""

    def __init__(self, driver: Driver, database: str | None = None,
                 retry_time: float | None = None) -> None:
        self.driver = driver
        self.database = database
        self.retry_time = _retry_time(driver) if retry_time is None else retry_time
        """Seconds to keep retrying a read; by default the driver's own retry time."""
        self.on_commit: Callable[[list[dict[str, Any]]], None] | None = None
        """Called after each committed write with the audit events it appended, as rows
        (``event_from_row`` makes them InstanceEvents)."""

    # -- transactions -------------------------------------------------------------------
    def read(self, work: Callable[..., T], *args: Any) -> T:
        def attempt(tx: ManagedTransaction, *inner: Any) -> T:
            try:
                return work(tx, *inner)
            except ResultFailedError as exc:
                raise _retryable_cause(exc) from None

        with translate_errors(), self.driver.session(database=self.database) as session:
            return session.execute_read(attempt, *args)

    def write(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work`` in a write transaction (retried on transient errors), then hand the
        audit events it appended to ``on_commit``: only events that committed are seen.

        The transaction first takes the event counter's lock (``lock_writes``), so writes
        run one at a time and cannot deadlock with each other."""
        appended: builtins.list[dict[str, Any]] = []

        def attempt(tx: ManagedTransaction, *inner: Any) -> T:
            appended.clear()  # a retried attempt starts over
            token = _APPENDED.set(appended)
            try:
                tx.run(QUERIES.lock_writes.text).consume()  # first: see lock_writes
                return work(tx, *inner)
            except ResultFailedError as exc:
                raise _retryable_cause(exc) from None
            finally:
                _APPENDED.reset(token)

        with translate_errors(), self.driver.session(database=self.database) as session:
            result = session.execute_write(attempt, *args)
        if appended and self.on_commit is not None:
            self.on_commit(appended)
        return result

    def _read_one(self, query: str, **params: Any) -> dict[str, Any] | None:
        rows = self._read_all(query, **params)
        return rows[0] if rows else None

    def _read_all(self, query: str, **params: Any) -> builtins.list[dict[str, Any]]:
        """The rows of one read statement, run as an auto-commit transaction.

        That is one round trip where a managed transaction takes two (BEGIN with RUN, then
        COMMIT): about 1 ms less per read, and 0.7 ms less CPU. The driver does not retry
        auto-commit transactions, so this does, as ``execute_read`` would: on the errors
        that say a retry may succeed, with growing pauses, within the driver's retry time.
        """
        deadline = time.monotonic() + self.retry_time
        pause = RETRY_FIRST_PAUSE
        with translate_errors():
            while True:
                try:
                    with self.driver.session(database=self.database,
                                             default_access_mode=READ_ACCESS) as session:
                        return [_plain(record) for record in session.run(query, params)]
                except (Neo4jError, DriverError) as exc:
                    if not exc.is_retryable() or time.monotonic() + pause > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_PAUSE)

    def _instance(self, row: dict[str, Any]) -> HopperInstance:
        return instance_from_row(row, self)

    def _instances(self, row: dict[str, Any]) -> builtins.list[HopperInstance]:
        """The instances of a record of ``INSTANCE_COLUMNS`` (a many-instance query)."""
        return instances_from_columns(row, self)

    # -- create -------------------------------------------------------------------------
    def create(self, spec: InstanceSpec, actor: str | None = None,
               before_write: Callable[[dict[str, Any]], None] | None = None
               ) -> HopperInstance:
        """Create one instance, validated against every scope rule, with its audit event.

        ``before_write`` sees the validated properties inside the transaction, just before
        they are written; raising there creates nothing (the lifecycle's on_create hooks).
        """
        checked = _check_spec(spec)

        def work(tx: ManagedTransaction) -> dict[str, Any]:
            now = utcnow()
            plan = self._plan_create(tx, checked)
            if before_write is not None:
                before_write(plan.props)
            event = new_event(plan.props["id"], "create", None, "CREATED", now, actor=actor)
            if plan.parent_id is None:
                row = tx.run(QUERIES.create_global_instance.text, props=plan.props,
                             now=now, event=stored_event(event)).single()
            else:
                row = tx.run(QUERIES.create_child_instance.text, props=plan.props,
                             parent_id=plan.parent_id, now=now,
                             event=stored_event(event)).single()
            assert row is not None
            event["seq"] = row["seq"]
            record_appended([event])
            return row["instance"]

        return self._instance(self.write(work))

    def _plan_create(self, tx: ManagedTransaction, spec: InstanceSpec) -> _Plan:
        scope = HopperScope(spec.scope)
        if spec.parent_id is None:
            return _Plan(_props(spec, None, 0), None)
        record = tx.run(QUERIES.lock_parent_for_create.text, parent_id=spec.parent_id,
                        scope=scope.value).single()
        if record is None:
            raise ScopeRuleViolation(f"parent {spec.parent_id} does not exist",
                                     errors={"parent_id": ["no instance with this id"]})
        parent = record["parent"]
        global_config = record["global_config"]
        max_depth = scope_config.max_depth(json.loads(global_config)) \
            if global_config is not None else None
        _check_parent(spec, parent, record["child_count"], record["same_scope_sibling_types"],
                      max_depth)
        project_id = spec.project_id if scope is HopperScope.PROJECT else parent["project_id"]
        return _Plan(_props(spec, project_id, parent["depth"] + 1), parent["id"])

    def bulk_create(self, specs: Sequence[InstanceSpec], actor: str | None = None,
                    batch_size: int = BULK_BATCH_SIZE) -> builtins.list[str]:
        """Create a whole hierarchy in one transaction of batched writes; returns the ids.

        Parents come before their children: each ``parent_id`` names an instance already in
        the graph or one earlier in ``specs``. Every rule of :meth:`create` applies, counted
        over the graph and the batch together; any violation creates nothing.
        """
        checked = [_check_spec(spec) for spec in specs]
        _check_unique_within(checked)

        def work(tx: ManagedTransaction) -> builtins.list[str]:
            now = utcnow()
            rows = _BulkPlanner(tx).plan(checked)
            if not rows:
                return []
            events = [new_event(r["props"]["id"], "create", None, "CREATED", now,
                              actor=actor) for r in rows]
            base = tx.run(QUERIES.reserve_event_seqs.text,
                          count=len(rows)).single(strict=True)["base"]
            for offset, (row, event) in enumerate(zip(rows, events, strict=True), 1):
                event["seq"] = base + offset
                row["event"] = stored_event(event)
            for start in range(0, len(rows), batch_size):
                tx.run(QUERIES.bulk_create_instances.text, rows=rows[start:start + batch_size],
                       now=now).consume()
            record_appended(events)
            return [r["props"]["id"] for r in rows]

        return self.write(work)

    # -- reads --------------------------------------------------------------------------
    def find(self, instance_id: str) -> HopperInstance | None:
        """The instance with this id, or None."""
        row = self._read_one(QUERIES.get_instance.text, id=instance_id)
        return self._instance(row["instance"]) if row else None

    def get(self, instance_id: str) -> HopperInstance:
        """The instance with this id; NotFound if there is none."""
        instance = self.find(instance_id)
        if instance is None:
            raise not_found(instance_id)
        return instance

    def get_by_scope_and_name(self, scope: HopperScope | str, name: str) -> HopperInstance:
        scope = _scope(scope)
        row = self._read_one(QUERIES.get_instance_by_scope_and_name.text, scope=scope.value,
                             name=name)
        if row is None:
            raise NotFound(f"no {scope.value} instance named {name!r}", scope=scope.value,
                           name=name)
        return self._instance(row["instance"])

    def list(self, *, scope: HopperScope | str | None = None,
             status: InstanceStatus | str | None = None, parent_id: str | None = None,
             project_id: str | None = None, offset: int = 0, limit: int = 100) -> Page:
        """A page of instances matching every given filter, in creation order."""
        _check_page(offset, limit)
        row = self._read_one(
            QUERIES.list_instances.text,
            scope=_scope(scope).value if scope is not None else None,
            status=_status(status).value if status is not None else None,
            parent_id=parent_id, project_id=project_id, skip=offset, limit=limit)
        assert row is not None
        return Page(self._instances(row), row["total"], offset, limit)

    # -- hierarchy ----------------------------------------------------------------------
    def get_children(self, parent_id: str, offset: int = 0,
                     limit: int | None = None) -> builtins.list[HopperInstance]:
        """The direct children of an instance, in creation order."""
        return self.children_page(parent_id, offset, limit).items

    def children_page(self, parent_id: str, offset: int = 0, limit: int | None = None) -> Page:
        return self._page(QUERIES.get_children, parent_id, offset, limit, parent_id=parent_id)

    def _page(self, query: NamedQuery, instance_id: str, offset: int, limit: int | None,
              **params: Any) -> Page:
        """One page of a query returning ``total`` and ``instances`` (no row: NotFound)."""
        _check_page(offset, limit)
        row = self._read_one(query.text, skip=offset, limit=ALL if limit is None else limit,
                             **params)
        if row is None:
            raise not_found(instance_id)
        return Page(self._instances(row), row["total"], offset, limit or ALL)

    def get_ancestors(self, instance_id: str) -> builtins.list[HopperInstance]:
        """The parent, its parent, and so on up to the root: nearest first."""
        row = self._read_one(QUERIES.get_ancestors.text, id=instance_id)
        if row is None:
            raise not_found(instance_id)
        return self._instances(row)

    def get_descendants(self, instance_id: str) -> builtins.list[HopperInstance]:
        """Everything below an instance, level by level."""
        return self.descendants_page(instance_id).items

    def descendants_page(self, instance_id: str, offset: int = 0,
                         limit: int | None = None) -> Page:
        return self._page(QUERIES.get_descendants, instance_id, offset, limit, id=instance_id)

    def get_flat_tree(self, root_id: str,
                      max_depth: int | None = None) -> builtins.list[FlatTreeRow]:
        """The subtree as rows (instance, parent_id, depth below the root), parents first."""
        if max_depth is not None and not 0 <= max_depth <= ALL:
            raise ValidationError("max_depth is out of range",
                                  errors={"max_depth": [f"must be between 0 and {ALL}"]})
        row = self._read_one(QUERIES.get_subtree.text, id=root_id, max_depth=max_depth)
        if row is None:
            raise not_found(root_id)
        instances = self._instances(row)
        if not instances or instances[0].id != root_id:  # the root was deleted while we read
            raise not_found(root_id)
        root, below = instances[0], instances[1:]
        below.sort(key=_tree_order)  # parents first; creation order within a level
        base = root.depth
        with gc_paused():
            return [FlatTreeRow(root, None, 0), *(FlatTreeRow(i, i.parent_id, i.depth - base)
                                                  for i in below)]

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
        row = self._read_one(QUERIES.get_global_instance.text)
        return self._instance(row["instance"]) if row else None

    def get_project_instances(self, project_id: str) -> builtins.list[HopperInstance]:
        """The PROJECT instances (sub-projects included) that carry ``project_id``."""
        return self._in_project(project_id, HopperScope.PROJECT)

    def get_orchestration_instances(self, project_id: str) -> builtins.list[HopperInstance]:
        """The ORCHESTRATION instances that belong to ``project_id``."""
        return self._in_project(project_id, HopperScope.ORCHESTRATION)

    def _in_project(self, project_id: str, scope: HopperScope) -> builtins.list[HopperInstance]:
        row = self._read_one(QUERIES.get_instances_in_scope_of_project.text,
                             project_id=project_id, scope=scope.value)
        assert row is not None  # an aggregation always answers
        return self._instances(row)

    def get_active_instances(self) -> builtins.list[HopperInstance]:
        return self.get_instances_by_status(InstanceStatus.ACTIVE)

    def get_instances_by_status(self,
                                status: InstanceStatus | str) -> builtins.list[HopperInstance]:
        row = self._read_one(QUERIES.get_instances_by_status.text, status=_status(status).value)
        assert row is not None  # an aggregation always answers
        return self._instances(row)

    # -- update and delete ----------------------------------------------------------------
    def update(self, instance_id: str, *, name: str | None = None,
               config: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
               replace: bool = False, expected_version: int | None = None,
               actor: str | None = None) -> HopperInstance:
        """Change name, config and/or metadata. Config and metadata merge into what is
        stored (nested maps merge, a None value removes a key) unless ``replace``."""
        if name is not None:
            _check_name(name)
        if metadata is not None:
            _check_metadata(metadata)

        def work(tx: ManagedTransaction) -> dict[str, Any]:
            current = lock_instance(tx, instance_id, expected_version)
            return update_fields(tx, current, name, config, metadata, replace, actor)

        return self._instance(self.write(work))

    def delete(self, instance_id: str, expected_version: int | None = None,
               actor: str | None = None, reason: str | None = None) -> builtins.list[str]:
        """Delete an instance and its subtree; refused while anything in it is ACTIVE or
        PAUSED (the lifecycle manager's ``delete(force=True)`` stops them first). The audit
        history stays. Returns the deleted ids, deepest first."""
        def work(tx: ManagedTransaction) -> builtins.list[str]:
            return delete_subtree(tx, instance_id, expected_version, actor, reason)
        return self.write(work)

    # -- audit ----------------------------------------------------------------------------
    def get_history(self, instance_id: str, offset: int = 0,
                    limit: int | None = None) -> builtins.list[InstanceEvent]:
        """The audit events of an instance, oldest first (also after it was deleted)."""
        _check_page(offset, limit)
        row = self._read_one(QUERIES.get_history.text, instance_id=instance_id, skip=offset,
                             limit=ALL if limit is None else limit)
        assert row is not None  # an aggregation always answers
        return events_from_columns(row)

    def events_since(self, after: int = 0, limit: int = 100) -> builtins.list[InstanceEvent]:
        """The change feed: events with ``seq`` greater than ``after``, in order."""
        _check_page(0, limit)
        if not 0 <= after <= MAX_SEQ:
            raise ValidationError("after is out of range",
                                  errors={"after": [f"must be between 0 and {MAX_SEQ}"]})
        row = self._read_one(QUERIES.events_since.text, after=after, limit=limit)
        assert row is not None  # an aggregation always answers
        return events_from_columns(row)


# -- transaction building blocks (also used by the lifecycle module) ----------------------
def append_events(tx: ManagedTransaction, events: list[dict[str, Any]]) -> None:
    """Write audit events in ``tx``; they commit or roll back with the change they record.
    The events of one call share one time (``at`` of the first), sent once."""
    if not events:
        return
    at = events[0]["at"]
    rows = [stored_event(event) for event in events]
    record = tx.run(QUERIES.append_events.text, events=rows, at=at).single(strict=True)
    for offset, event in enumerate(events, 1):
        event["seq"] = record["base"] + offset
    record_appended(events)


def stored_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event's properties but its time, which the queries take once as a parameter."""
    return {k: v for k, v in event.items() if k != "at"}


def record_appended(events: list[dict[str, Any]]) -> None:
    """Note events written in this transaction for the subscribers, told after commit."""
    appended = _APPENDED.get()
    if appended is not None:
        appended.extend(events)


def lock_instance(tx: ManagedTransaction, instance_id: str,
                  expected_version: int | None = None) -> dict[str, Any]:
    """Take an instance's write lock and return its stored properties."""
    record = tx.run(QUERIES.lock_instance.text, id=instance_id).single()
    if record is None:
        raise not_found(instance_id)
    row: dict[str, Any] = record["instance"]
    if expected_version is not None and row["version"] != expected_version:
        raise ConcurrentModification(
            f"instance {instance_id} is at version {row['version']}, not {expected_version}",
            id=instance_id, version=row["version"], expected_version=expected_version)
    return row


def update_fields(tx: ManagedTransaction, current: dict[str, Any], name: str | None,
                  config: dict[str, Any] | None, metadata: dict[str, Any] | None,
                  replace: bool, actor: str | None) -> dict[str, Any]:
    """Write name/config/metadata changes to a locked instance with an ``update`` event;
    returns the instance as stored afterwards (unchanged, and no event, if nothing changed)."""
    if name is not None:
        _check_name(name)
    if metadata is not None:
        _check_metadata(metadata)
    changes = _changes(current, name, config, metadata, replace)
    if not changes:
        return current
    now = utcnow()
    row = tx.run(QUERIES.update_instance.text, id=current["id"], changes=changes,
                 now=now).single()
    assert row is not None
    status = current["status"]
    append_events(tx, [new_event(current["id"], "update", status, status, now, actor=actor,
                                 reason="changed " + ", ".join(sorted(changes)))])
    return row["instance"]


def lock_with_parent(tx: ManagedTransaction, instance_id: str,
                     expected_version: int | None = None) -> dict[str, Any]:
    """Take the parent's write lock, then the instance's (top down, like every writer).
    Returns the instance as stored, with ``parent_status`` added."""
    record = tx.run(QUERIES.lock_for_transition.text, id=instance_id).single()
    if record is None:
        raise not_found(instance_id)
    row: dict[str, Any] = dict(record["instance"], parent_status=record["parent_status"])
    if expected_version is not None and row["version"] != expected_version:
        raise ConcurrentModification(
            f"instance {instance_id} is at version {row['version']}, not {expected_version}",
            id=instance_id, version=row["version"], expected_version=expected_version)
    return row


def lock_subtree(tx: ManagedTransaction, instance_id: str) -> list[dict[str, Any]]:
    """Lock an instance and its subtree top down; rows deepest first (root last)."""
    rows = [r["instance"] for r in tx.run(QUERIES.lock_subtree.text, id=instance_id)]
    if not rows:
        raise not_found(instance_id)
    return rows


def delete_subtree(tx: ManagedTransaction, instance_id: str, expected_version: int | None,
                   actor: str | None, reason: str | None) -> list[str]:
    """Delete a subtree whose members are all at rest, writing one event per instance."""
    root = lock_with_parent(tx, instance_id, expected_version)
    rows = lock_subtree(tx, instance_id)
    running = [r["id"] for r in rows if InstanceStatus(r["status"]).is_running]
    if running:
        raise InstanceRunning(
            f"cannot delete {instance_id}: {len(running)} instance(s) in its subtree are "
            "ACTIVE or PAUSED (stop them, or delete with force)",
            id=instance_id, running=running[:20])
    now = utcnow()
    append_events(tx, [
        new_event(r["id"], "delete", r["status"], None, now, actor=actor, reason=reason,
                  cause=None if r["id"] == instance_id else instance_id) for r in rows])
    tx.run(QUERIES.delete_subtree.text, id=root["id"]).consume()
    return [r["id"] for r in rows]


# -- validation helpers -------------------------------------------------------------------
def _scope(value: HopperScope | str) -> HopperScope:
    try:
        return HopperScope(value)
    except ValueError:
        raise ValidationError(f"unknown scope {value!r}", errors={"scope": [
            f"must be one of {', '.join(s.value for s in HopperScope)}"]}) from None


def _status(value: InstanceStatus | str) -> InstanceStatus:
    try:
        return InstanceStatus(value)
    except ValueError:
        raise ValidationError(f"unknown status {value!r}", errors={"status": [
            f"must be one of {', '.join(s.value for s in InstanceStatus)}"]}) from None


def _check_page(offset: int, limit: int | None) -> None:
    errors = {}
    if not 0 <= offset <= ALL:
        errors["offset"] = [f"must be between 0 and {ALL}"]
    if limit is not None and not 1 <= limit <= ALL:
        errors["limit"] = [f"must be between 1 and {ALL}"]
    if errors:
        raise ValidationError("invalid pagination", errors=errors)


def check_text(field: str, value: str | None) -> None:
    """Strings stored as properties must be valid Unicode (no lone surrogates): the driver
    cannot encode them, and what cannot be stored is refused before anything is written."""
    if value is None:
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} is not valid Unicode", errors={
            field: ["contains an unpaired surrogate"]}) from None


def check_nesting(field: str, value: Any, limit: int = MAX_NESTING) -> None:
    """Refuse maps and lists nested deeper than ``limit`` (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                raise ValidationError(f"{field} is nested too deeply", errors={
                    field: [f"at most {limit} levels of nesting"]})
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("name must be a non-empty string",
                              errors={"name": ["must be a non-empty string"]})
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError("name is too long",
                              errors={"name": [f"at most {MAX_NAME_LENGTH} characters"]})
    check_text("name", name)


def _check_metadata(metadata: object) -> None:
    if not isinstance(metadata, dict):
        raise ValidationError("metadata must be an object",
                              errors={"metadata": ["must be an object"]})
    check_nesting("metadata", metadata)
    try:
        text = json.dumps(metadata, allow_nan=False, sort_keys=True)
        exact = json.dumps(orjson.loads(text), sort_keys=True) == text
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError("metadata must be JSON-serialisable",
                              errors={"metadata": [str(exc)]}) from None
    if not exact:  # stored as JSON, it must read back the same
        raise ValidationError("metadata must round-trip through JSON exactly", errors={
            "metadata": ["only objects, arrays, strings, booleans, null, finite numbers and "
                         "integers within 64 bits"]})


def _check_spec(spec: InstanceSpec) -> InstanceSpec:
    """Everything that can be checked without the graph; returns a normalised spec."""
    _check_name(spec.name)
    scope = _scope(spec.scope)
    errors: dict[str, list[str]] = {}
    instance_type = DEFAULT_INSTANCE_TYPE[scope]
    if spec.instance_type is not None:
        try:
            instance_type = InstanceType(spec.instance_type)
        except ValueError:
            errors["instance_type"] = [
                f"must be one of {', '.join(t.value for t in InstanceType)}"]
    if scope is HopperScope.GLOBAL:
        if spec.parent_id is not None:
            errors["parent_id"] = ["a GLOBAL instance is always a root"]
        if spec.project_id is not None:
            errors["project_id"] = ["a GLOBAL instance has no project"]
        if instance_type is not InstanceType.SINGLETON:
            errors["instance_type"] = ["a GLOBAL instance is always SINGLETON"]
    elif spec.parent_id is None:
        errors["parent_id"] = [f"a {scope.value} instance needs a parent"]
    if scope is HopperScope.PROJECT and not (
            isinstance(spec.project_id, str) and spec.project_id.strip()):
        errors["project_id"] = ["required for a PROJECT instance"]
    if spec.project_id is not None:
        check_text("project_id", str(spec.project_id))
    if errors:
        raise ScopeRuleViolation("the instance breaks a scope rule", errors=errors)
    if spec.metadata is not None:
        _check_metadata(spec.metadata)
    check_nesting("config", spec.config)
    overrides = scope_config.validate_overrides(scope, spec.config)
    return InstanceSpec(name=spec.name, scope=scope, parent_id=spec.parent_id,
                        project_id=spec.project_id, instance_type=instance_type,
                        config=overrides, metadata=spec.metadata or {},
                        id=_canonical_id(spec.id) if spec.id is not None else str(uuid.uuid4()))


def _canonical_id(value: object) -> str:
    """A caller's id in the one form the graph stores (lower case, dashed)."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValidationError("id must be a UUID", errors={"id": ["must be a UUID"]}) from None


def _check_parent(spec: InstanceSpec, parent: dict[str, Any], child_count: int,
                  sibling_types: Collection[str], max_depth: int | None,
                  limit: int | None = None) -> None:
    """The rules that need the (locked) parent: scope order, status, limits, SINGLETON.
    ``limit`` is the parent's ``limits.max_child_instances`` when the caller knows it."""
    scope = HopperScope(spec.scope)
    parent_scope = HopperScope(parent["scope"])
    if parent_scope not in ALLOWED_PARENT_SCOPES[scope]:
        raise ScopeRuleViolation(
            f"a {scope.value} instance cannot have a {parent_scope.value} parent",
            errors={"parent_id": [f"parent is {parent_scope.value}; a {scope.value} needs one "
                                  f"of {sorted(s.value for s in ALLOWED_PARENT_SCOPES[scope])}"]})
    if parent["status"] == InstanceStatus.ARCHIVED:
        raise ParentArchived(f"parent {parent['id']} is ARCHIVED: nothing may be created under it",
                             parent_id=parent["id"])
    if scope is HopperScope.ORCHESTRATION and spec.project_id not in (None,
                                                                    parent["project_id"]):
        raise ScopeRuleViolation("an ORCHESTRATION inherits its parent's project_id", errors={
            "project_id": [f"must be {parent['project_id']!r} (the parent's) or omitted"]})
    if max_depth is not None and parent["depth"] + 1 > max_depth:
        raise LimitExceeded(f"the hierarchy is limited to depth {max_depth}",
                            limit="limits.max_depth", value=max_depth)
    if limit is None:
        limit = scope_config.max_child_instances(json.loads(parent["config"]))
    if child_count >= limit:
        raise LimitExceeded(f"parent {parent['id']} already has {child_count} children "
                            f"(limits.max_child_instances = {limit})",
                            limit="limits.max_child_instances", value=limit,
                            parent_id=parent["id"])
    _check_singleton(spec, sibling_types)


def _check_singleton(spec: InstanceSpec, sibling_types: Collection[str]) -> None:
    if not sibling_types:
        return
    if (spec.instance_type == InstanceType.SINGLETON
            or InstanceType.SINGLETON.value in sibling_types):
        raise ScopeRuleViolation(
            f"a SINGLETON {HopperScope(spec.scope).value} instance cannot have a same-scope "
            "sibling", errors={"instance_type": ["SINGLETON forbids a same-scope sibling"]})


def _check_unique_within(specs: Sequence[InstanceSpec]) -> None:
    seen: dict[tuple[str, str], int] = {}
    ids: set[str] = set()
    for index, spec in enumerate(specs):
        key = (spec.name, str(spec.scope))
        if key in seen:
            raise DuplicateName(f"{spec.name!r} ({spec.scope}) appears twice in the batch",
                                errors={f"[{index}].name": ["duplicate in this batch"]})
        seen[key] = index
        if spec.id in ids:
            raise ValidationError("duplicate id in the batch",
                                  errors={f"[{index}].id": ["duplicate in this batch"]})
        ids.add(spec.id)  # type: ignore[arg-type]


def _props(spec: InstanceSpec, project_id: str | None, depth: int) -> dict[str, Any]:
    """The stored properties of a new instance; the create query adds the timestamps."""
    scope = HopperScope(spec.scope)
    overrides = spec.config or {}
    return {
        "id": spec.id, "name": spec.name, "scope": scope.value,
        "status": InstanceStatus.CREATED.value,
        "instance_type": InstanceType(spec.instance_type).value,  # type: ignore[arg-type]
        "parent_id": spec.parent_id, "project_id": project_id,
        "config": scope_config.full_config_json(scope, overrides),
        "config_set": json.dumps(overrides) if overrides else "{}",
        "metadata": json.dumps(spec.metadata) if spec.metadata else "{}",
        "version": 1, "depth": depth,
    }


def _changes(current: dict[str, Any], name: str | None, config: dict[str, Any] | None,
             metadata: dict[str, Any] | None, replace: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if name is not None and name != current["name"]:
        changes["name"] = name
    if config is not None:
        check_nesting("config", config)
        scope = HopperScope(current["scope"])
        stored = json.loads(current.get("config_set") or "{}")
        overrides = scope_config.update_overrides(scope, stored, config, replace=replace)
        changes["config_set"] = json.dumps(overrides)
        changes["config"] = scope_config.full_config_json(scope, overrides)
    if metadata is not None:
        stored = json.loads(current.get("metadata") or "{}")
        merged = metadata if replace else scope_config.merge_config(stored, metadata)
        changes["metadata"] = json.dumps(merged)
    return changes


class _BulkPlanner:
    """Validates a bulk import against the graph (parents locked) and the batch itself."""

    def __init__(self, tx: ManagedTransaction) -> None:
        self.tx = tx
        self.parents: dict[str, dict[str, Any]] = {}
        self.child_count: dict[str, int] = {}
        # per parent: the instance types of its children, by scope (the SINGLETON rule)
        self.children: dict[str, dict[str, set[str]]] = {}
        self.limits: dict[str, int] = {}  # per parent: limits.max_child_instances
        self.max_depth: int | None = None

    def plan(self, specs: Sequence[InstanceSpec]) -> list[dict[str, Any]]:
        batch_ids = {spec.id for spec in specs}
        external = sorted({s.parent_id for s in specs
                           if s.parent_id is not None and s.parent_id not in batch_ids})
        for record in self.tx.run(QUERIES.bulk_lock_parents.text, parent_ids=external):
            parent = record["parent"]
            self.parents[parent["id"]] = parent
            self.child_count[parent["id"]] = record["child_count"]
            by_scope: dict[str, set[str]] = {}
            for scope, kind in record["children"]:
                by_scope.setdefault(scope, set()).add(kind)
            self.children[parent["id"]] = by_scope
        global_config = self.tx.run(QUERIES.get_global_config.text).single()
        if global_config:
            self.max_depth = scope_config.max_depth(json.loads(global_config["config"]))
        return [self._row(index, spec) for index, spec in enumerate(specs)]

    def _row(self, index: int, spec: InstanceSpec) -> dict[str, Any]:
        try:
            if spec.parent_id is None:
                props = _props(spec, None, 0)
                self.max_depth = scope_config.max_depth(json.loads(props["config"]))
            else:
                props = self._child_props(spec)
        except (ValidationError, LimitExceeded, ParentArchived) as exc:
            exc.details["index"] = index
            if isinstance(exc, ValidationError):
                exc.errors = {f"[{index}].{k}": v for k, v in exc.errors.items()}
            raise
        self.parents[spec.id] = props  # type: ignore[index]
        self.child_count[spec.id] = 0  # type: ignore[index]
        self.children[spec.id] = {}  # type: ignore[index]
        # offset: microseconds after the import's time, so children keep the import order
        return {"props": props, "parent_id": spec.parent_id, "offset": index}

    def _child_props(self, spec: InstanceSpec) -> dict[str, Any]:
        parent = self.parents.get(spec.parent_id)  # type: ignore[arg-type]
        if parent is None:
            raise ScopeRuleViolation(f"parent {spec.parent_id} does not exist", errors={
                "parent_id": ["no instance with this id in the graph or earlier in the batch"]})
        pid = parent["id"]
        scope = HopperScope(spec.scope)
        kind = InstanceType(spec.instance_type).value  # type: ignore[arg-type]
        limit = self.limits.get(pid)
        if limit is None:
            limit = self.limits[pid] = scope_config.max_child_instances(
                json.loads(parent["config"]))
        siblings = self.children[pid].setdefault(scope.value, set())
        _check_parent(spec, parent, self.child_count[pid], siblings, self.max_depth, limit)
        self.child_count[pid] += 1
        siblings.add(kind)
        project_id = spec.project_id if scope is HopperScope.PROJECT else parent["project_id"]
        return _props(spec, project_id, parent["depth"] + 1)
