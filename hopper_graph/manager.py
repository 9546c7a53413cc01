"""InstanceManager: the façade scripts and the API use.

It holds an ``InstanceRepository`` (reads and writes) and an ``InstanceLifecycleManager``
(status changes, hooks, audit), and adds what needs both: health checks, heartbeats, the
effective configuration with its provenance, and in-process subscribers to the change feed.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from neo4j import Driver

from hopper_graph import audit, rules
from hopper_graph import config as scope_config
from hopper_graph import purge as purging
from hopper_graph.enums import HopperScope, InstanceStatus
from hopper_graph.errors import InvalidTransition
from hopper_graph.lifecycle import (
    DeleteResult,
    HookRegistry,
    InstanceLifecycleManager,
    TransitionResult,
)
from hopper_graph.models import (
    FlatTreeRow,
    HopperInstance,
    InstanceEvent,
    InstanceSpec,
    Page,
    TreeNode,
)
from hopper_graph.purge import PurgeReport
from hopper_graph.queries import QUERIES
from hopper_graph.repository import InstanceRepository, not_found, utcnow
from hopper_graph.rows import event_from_row, instance_from_row
from hopper_graph.rules import Expected

log = logging.getLogger("hopper_graph.manager")

HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN = "healthy", "degraded", "unhealthy", "unknown"
_RANK = {HEALTHY: 0, UNKNOWN: 1, DEGRADED: 2, UNHEALTHY: 3}
Subscriber = Callable[[InstanceEvent], None]


@dataclass(slots=True)
class HealthCheck:
    name: str
    status: str  # pass | warn | fail | unknown
    detail: str


@dataclass(slots=True)
class HealthReport:
    """An instance's health: the worst of its checks (fail -> unhealthy, warn -> degraded,
    unknown -> unknown), each check, and for a subtree roll-up the count per status."""

    id: str
    status: str
    checks: list[HealthCheck]
    instance_status: InstanceStatus
    subtree: dict[str, int] | None = None
    unhealthy: list[str] = field(default_factory=list)


@dataclass(slots=True)
class EffectiveConfig:
    id: str
    config: dict[str, Any]
    provenance: dict[str, str]
    """Each dotted leaf key -> the id of the instance it came from, or "default"."""


class InstanceManager:
    """Create, read, change and watch instances; every status change goes through the
    lifecycle manager."""

    def __init__(self, driver: Driver, database: str | None = None,
                 hooks: HookRegistry | None = None) -> None:
        self.repository = InstanceRepository(driver, database)
        self.lifecycle = InstanceLifecycleManager(self.repository, hooks)
        self._subscribers: builtins.list[Subscriber] = []
        self._lock = threading.Lock()
        self.repository.on_commit = self._publish

    @property
    def hooks(self) -> HookRegistry:
        return self.lifecycle.hooks

    # -- create, read, update, delete ---------------------------------------------------
    def create(self, spec: InstanceSpec | None = None, *, actor: str | None = None,
               **fields: Any) -> HopperInstance:
        """Create an instance from a spec, or from keyword fields (name, scope, ...)."""
        return self.lifecycle.create(spec or InstanceSpec(**fields), actor=actor)

    def bulk_create(self, specs: Sequence[InstanceSpec],
                    actor: str | None = None) -> builtins.list[str]:
        """Import a whole hierarchy in one transaction; the on_create hooks see each
        instance (see InstanceLifecycleManager.bulk_create)."""
        return self.lifecycle.bulk_create(specs, actor=actor)

    def get(self, instance_id: str) -> HopperInstance:
        return self.repository.get(instance_id)

    def get_by_scope_and_name(self, scope: HopperScope | str, name: str) -> HopperInstance:
        return self.repository.get_by_scope_and_name(scope, name)

    def list(self, *, fields: Sequence[str] | None = None, **filters: Any) -> Page:
        """A page of instances (see InstanceRepository.list); with ``fields``, each item is
        a dict of only those fields (and ``id``), as ``HopperInstance.to_dict`` gives them."""
        chosen = _chosen(fields)
        return _selected(self.repository.list(**filters), chosen)

    def update(self, instance_id: str, **changes: Any) -> HopperInstance:
        """Change name, config and/or metadata, and with ``status=`` the status too, in one
        transaction (see InstanceLifecycleManager.update)."""
        return self.lifecycle.update(instance_id, **changes)

    def delete(self, instance_id: str, *, force: bool = False, actor: str | None = None,
               reason: str | None = None, expected_version: Expected = None
               ) -> DeleteResult:
        return self.lifecycle.delete(instance_id, force=force, actor=actor, reason=reason,
                                     expected_version=expected_version)

    # -- lifecycle ------------------------------------------------------------------------
    def transition(self, instance_id: str, event: str, **options: Any) -> TransitionResult:
        return self.lifecycle.transition(instance_id, event, **options)

    def start(self, instance_id: str, **options: Any) -> TransitionResult:
        return self.transition(instance_id, "start", **options)

    def stop(self, instance_id: str, **options: Any) -> TransitionResult:
        return self.transition(instance_id, "stop", **options)

    def pause(self, instance_id: str, **options: Any) -> TransitionResult:
        return self.transition(instance_id, "pause", **options)

    def resume(self, instance_id: str, **options: Any) -> TransitionResult:
        return self.transition(instance_id, "resume", **options)

    def archive(self, instance_id: str, **options: Any) -> TransitionResult:
        return self.transition(instance_id, "archive", **options)

    def purge(self, older_than: timedelta | None = None, *, dry_run: bool = False,
              actor: str | None = None, limit: int = purging.DEFAULT_LIMIT,
              batch: int = purging.DEFAULT_BATCH, after: str | None = None,
              progress: Callable[[int, int | None], None] | None = None) -> PurgeReport:
        """Delete the ARCHIVED EPHEMERAL instances past their retention, never one that is
        not purgeable itself; ``dry_run`` lists what would go and what stays, with why.
        At most ``limit`` are examined; ``after`` goes on from a report's ``cursor``;
        ``progress(examined, None)`` hears each page."""
        return purging.purge(self.lifecycle, older_than, dry_run=dry_run, actor=actor,
                             limit=limit, batch=batch, after=after, progress=progress)

    def purge_archived(self, older_than: timedelta | None = None,
                       actor: str | None = None) -> builtins.list[str]:
        """The ids :meth:`purge` deleted."""
        return [item.id for item in self.purge(older_than, actor=actor).purged]

    # -- hierarchy (the repository's reads) -------------------------------------------------
    def children_page(self, parent_id: str, offset: int = 0, limit: int | None = None,
                      after: str | None = None, fields: Sequence[str] | None = None) -> Page:
        """A page of children: pass ``after=page.next`` for the next (``cursors.FIRST``
        starts paging by cursor), or an offset; ``fields`` as for :meth:`list`."""
        chosen = _chosen(fields)
        return _selected(self.repository.children_page(parent_id, offset, limit, after),
                         chosen)

    def get_children(self, parent_id: str) -> builtins.list[HopperInstance]:
        return self.repository.get_children(parent_id)

    def get_ancestors(self, instance_id: str) -> builtins.list[HopperInstance]:
        return self.repository.get_ancestors(instance_id)

    def get_descendants(self, instance_id: str) -> builtins.list[HopperInstance]:
        return self.repository.get_descendants(instance_id)

    def descendants_page(self, instance_id: str, offset: int = 0,
                         limit: int | None = None, after: str | None = None,
                         fields: Sequence[str] | None = None) -> Page:
        chosen = _chosen(fields)
        return _selected(self.repository.descendants_page(instance_id, offset, limit, after),
                         chosen)

    def get_instance_tree(self, root_id: str, max_depth: int | None = None) -> TreeNode:
        return self.repository.get_instance_tree(root_id, max_depth)

    def get_tree_fields(self, root_id: str, fields: Sequence[str],
                        max_depth: int | None = None) -> builtins.list[dict[str, Any]]:
        """The flat tree with only ``fields`` of each instance: a tree view that needs a
        few fields reads and carries those alone (see InstanceRepository.get_tree_fields)."""
        return self.repository.get_tree_fields(root_id, fields, max_depth)

    def get_flat_tree(self, root_id: str,
                      max_depth: int | None = None) -> builtins.list[FlatTreeRow]:
        return self.repository.get_flat_tree(root_id, max_depth)

    def get_global_instance(self) -> HopperInstance | None:
        return self.repository.get_global_instance()

    def get_project_instances(self, project_id: str) -> builtins.list[HopperInstance]:
        return self.repository.get_project_instances(project_id)

    def get_orchestration_instances(self, project_id: str) -> builtins.list[HopperInstance]:
        return self.repository.get_orchestration_instances(project_id)

    def get_active_instances(self) -> builtins.list[HopperInstance]:
        return self.repository.get_active_instances()

    def get_instances_by_status(self,
                                status: InstanceStatus | str) -> builtins.list[HopperInstance]:
        return self.repository.get_instances_by_status(status)

    # -- audit and notifications ------------------------------------------------------------
    def history(self, instance_id: str, offset: int = 0,
                limit: int | None = None) -> builtins.list[InstanceEvent]:
        return self.repository.get_history(instance_id, offset, limit)

    def history_page(self, instance_id: str, offset: int = 0, limit: int | None = None,
                     after: str | None = None) -> Page:
        """A page of an instance's audit events; ``after=page.next`` continues it."""
        return self.repository.history_page(instance_id, offset, limit, after)

    def events_since(self, after: int = 0, limit: int = 100) -> builtins.list[InstanceEvent]:
        """The durable change feed: pass the last ``seq`` you processed as ``after``."""
        return self.repository.events_since(after, limit)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with each audit event after its transaction commits, in this
        process. Returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)
        return unsubscribe

    def _publish(self, rows: builtins.list[dict[str, Any]]) -> None:
        """Tell the subscribers about committed events, once the feed has numbered them
        (the write that made them numbers them itself, only when someone listens)."""
        with self._lock:
            subscribers = list(self._subscribers)
        if not subscribers:
            return
        seqs = self._sequenced([row["id"] for row in rows])
        for event in map(event_from_row, ({**row, "seq": seqs[row["id"]]} for row in rows)):
            for subscriber in subscribers:
                try:
                    subscriber(event)
                except Exception:
                    log.exception("subscriber %r failed on event %s", subscriber, event.seq)

    def _sequenced(self, event_ids: builtins.list[str]) -> dict[str, int | None]:
        graph = self.repository.graph
        while True:
            seqs = audit.seqs_of(graph, event_ids)
            if all(seqs.get(i) is not None for i in event_ids) or not audit.sequence(graph):
                return {i: seqs.get(i) for i in event_ids}

    # -- config -----------------------------------------------------------------------------
    def effective_config(self, instance_id: str) -> EffectiveConfig:
        """The config an instance runs with (inherited sections filled in from its
        ancestors) and where each key came from; one query over the ancestor chain."""
        row = self.repository.row(QUERIES.get_config_chain.text, id=instance_id)
        if row is None:
            raise not_found(instance_id)
        own = row["instance"]
        chain = [(own["id"], json.loads(own["config_set"] or "{}"))]
        chain += [(a["id"], json.loads(a["config_set"] or "{}")) for a in row["ancestors"]]
        config, provenance = scope_config.effective_config(chain, own["scope"])
        return EffectiveConfig(own["id"], config, provenance)

    # -- health -------------------------------------------------------------------------------
    def heartbeat(self, instance_id: str) -> HopperInstance:
        """Record that the instance's runner is alive (refused once it is ARCHIVED)."""
        rows = self.repository.graph.write_rows(QUERIES.record_heartbeat.text, id=instance_id,
                                                now=utcnow())
        if not rows:
            raise not_found(instance_id)
        instance = instance_from_row(rows[0]["instance"], self.repository)
        if instance.status is InstanceStatus.ARCHIVED:  # the query wrote nothing
            raise InvalidTransition(f"instance {instance_id} is ARCHIVED: no heartbeats",
                                    id=instance_id, status="ARCHIVED", event="heartbeat",
                                    allowed_events=[])
        return instance

    def health_check(self, instance_id: str, subtree: bool = False) -> HealthReport:
        """healthy / degraded / unhealthy / unknown, with the individual checks; with
        ``subtree``, the worst over the whole subtree and a count per status."""
        query = QUERIES.get_subtree_health_facts if subtree else QUERIES.get_health_facts
        rows = self.repository.rows(query.text, id=instance_id)
        if not rows:
            raise not_found(instance_id)
        now = utcnow()
        # The heartbeat timeout an ancestor set, per instance: inherited in one step from
        # the parent (keeping each ancestor chain instead cost memory in the square of the
        # depth: 68 MB for a 4,000-deep chain).
        inherited: dict[str | None, int | None] = {}
        reports = []
        for row in rows:
            instance = instance_from_row(row["instance"])
            if instance.parent_id in inherited:
                above = inherited[instance.parent_id]
            else:  # the root: its ancestors' overrides came with its row, nearest first
                above = _set_timeout([json.loads(a or "{}") for a in row["above"] or []])
            own = _set_timeout([json.loads(row["instance"].get("config_set") or "{}")])
            inherited[instance.id] = own if own is not None else above
            reports.append(_assess(instance, row, inherited[instance.id], now))
        root = reports[0]
        if subtree:
            root.subtree = {s: 0 for s in _RANK}
            for report in reports:
                root.subtree[report.status] += 1
            root.unhealthy = [r.id for r in reports if r.status == UNHEALTHY][:100]
            root.status = max(reports, key=lambda r: _RANK[r.status]).status
        return root


def _chosen(fields: Sequence[str] | None) -> tuple[str, ...] | None:
    """The fields a page keeps (id always), checked before anything is read."""
    return None if fields is None else rules.check_fields(["id", *fields])


def _selected(page: Page, chosen: tuple[str, ...] | None) -> Page:
    """The page with each instance cut to ``chosen`` fields (a dict), or as it is."""
    if chosen is not None:
        page.items = [{k: d[k] for k in chosen} for d in (i.to_dict() for i in page.items)]
    return page


def _assess(instance: HopperInstance, row: dict[str, Any], set_timeout: int | None,
            now: datetime) -> HealthReport:
    checks = [
        _parent_check(instance, row["parent_status"]),
        _heartbeat_check(instance, _heartbeat_timeout(instance, set_timeout), now),
        _headroom_check(instance, row["child_count"]),
        _config_check(instance),
    ]
    worst = max((c.status for c in checks), key=lambda s: _CHECK_RANK[s])
    return HealthReport(instance.id, _CHECK_TO_HEALTH[worst], checks, instance.status)


def _set_timeout(chain: list[dict[str, Any]]) -> int | None:
    """health.heartbeat_timeout_seconds from the nearest of ``chain`` (config overrides,
    nearest first) that set it; None when none did."""
    for overrides in chain:
        value = overrides.get("health", {}).get("heartbeat_timeout_seconds")
        if value is not None:
            return int(value)
    return None


def _heartbeat_timeout(instance: HopperInstance, set_timeout: int | None) -> int | None:
    """health.heartbeat_timeout_seconds as inherited: the nearest instance that set it
    (the instance itself included), else its own scope default (see
    config.INHERITABLE_KEYS)."""
    if set_timeout is not None:
        return set_timeout
    return instance.config.get("health", {}).get("heartbeat_timeout_seconds")


_CHECK_RANK = {"pass": 0, "unknown": 1, "warn": 2, "fail": 3}
_CHECK_TO_HEALTH = {"pass": HEALTHY, "unknown": UNKNOWN, "warn": DEGRADED, "fail": UNHEALTHY}


def _parent_check(instance: HopperInstance, parent_status: str | None) -> HealthCheck:
    """A running instance needs a running parent: ACTIVE under ACTIVE, PAUSED under either."""
    allowed = {InstanceStatus.ACTIVE: {"ACTIVE"}, InstanceStatus.PAUSED: {"ACTIVE", "PAUSED"}}
    if parent_status is None or instance.status not in allowed:
        return HealthCheck("parent_status", "pass", "consistent with its parent")
    if parent_status in allowed[instance.status]:
        return HealthCheck("parent_status", "pass", f"parent is {parent_status}")
    return HealthCheck("parent_status", "fail",
                       f"{instance.status.value} under {rules.with_article(parent_status)} parent")


def _heartbeat_check(instance: HopperInstance, timeout: int | None,
                     now: datetime) -> HealthCheck:
    """The heartbeat clock starts at the latest start: an ACTIVE instance passes until
    ``timeout`` goes by with no heartbeat since then. A heartbeat from before the start
    was sent by the previous run and says nothing about this one."""
    if instance.status is not InstanceStatus.ACTIVE:
        return HealthCheck("heartbeat", "pass", f"not expected while {instance.status.value}")
    beat, started = instance.heartbeat_at, instance.started_at
    if beat is not None and started is not None and beat < started:
        beat = None
    clock = beat or started
    if clock is None:  # only a graph written outside the library
        return HealthCheck("heartbeat", "unknown", "ACTIVE with no start time or heartbeat")
    age = (now - clock).total_seconds()
    since = f"last heartbeat {age:.0f} s ago" if beat else \
        f"no heartbeat since it started {age:.0f} s ago"
    if timeout is None or age <= timeout:
        return HealthCheck("heartbeat", "pass", since)
    return HealthCheck("heartbeat", "fail", f"{since}, timeout is {timeout} s")


def _headroom_check(instance: HopperInstance, child_count: int) -> HealthCheck:
    limit = instance.config.get("limits", {}).get("max_child_instances")
    if not limit:
        return HealthCheck("child_headroom", "pass", f"{child_count} children, no limit")
    detail = f"{child_count} of {limit} children"
    if child_count > limit:  # the limit was lowered below what exists
        return HealthCheck("child_headroom", "fail", detail + ": over the limit")
    return HealthCheck("child_headroom", "warn" if child_count >= 0.9 * limit else "pass",
                       detail)


def _config_check(instance: HopperInstance) -> HealthCheck:
    try:
        scope_config.validate_config(instance.scope, instance.config)
    except Exception as exc:  # a template change can make an old config invalid
        errors = getattr(exc, "errors", None) or str(exc)
        return HealthCheck("config", "fail", f"config no longer validates: {errors}")
    return HealthCheck("config", "pass", "valid")
