"""InstanceManager: the façade scripts and the API use.

It builds one ``Graph`` and hands it to what runs queries: the ``InstanceRepository``
(reads and writes), the ``InstanceLifecycleManager`` (status changes, hooks, audit), the
``Feed`` (the change feed and in-process subscribers) and the health checks. It adds what
needs more than one of them: heartbeats and the effective configuration with its
provenance. ``manager.tokens`` creates, lists and revokes scoped API tokens.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from neo4j import Driver

from hopper_graph import audit, health, liens, metrics, rules
from hopper_graph import config as scope_config
from hopper_graph import purge as purging
from hopper_graph.enums import HopperScope, InstanceStatus
from hopper_graph.errors import InvalidTransition
from hopper_graph.feed import Feed, Subscriber
from hopper_graph.graph import Graph
from hopper_graph.health import HealthReport
from hopper_graph.hooks import HookRegistry
from hopper_graph.labels import Selector
from hopper_graph.liens import Lien
from hopper_graph.lifecycle import DeleteResult, InstanceLifecycleManager, TransitionResult
from hopper_graph.machine import EVENTS
from hopper_graph.models import (
    FlatTreeRow,
    HopperInstance,
    InstanceEvent,
    InstanceSpec,
    Page,
    TreeNode,
)
from hopper_graph.move import Mover
from hopper_graph.purge import PurgeReport
from hopper_graph.queries import QUERIES
from hopper_graph.repository import InstanceRepository
from hopper_graph.restores import RestoreWatch
from hopper_graph.rules import Expected
from hopper_graph.statements import not_found
from hopper_graph.tokens import TokenStore


@dataclass(slots=True)
class EffectiveConfig:
    id: str
    config: dict[str, Any]
    provenance: dict[str, str]
    """Each dotted leaf key -> the id of the instance it came from, or "default"."""


def _event_kind(manager: Any, instance_id: str, event: str, **options: Any) -> str:
    """A transition's write kind for the metrics: its event, if it is one."""
    return event if event in EVENTS else "transition"


class InstanceManager:
    """Create, read, change and watch instances; every status change goes through the
    lifecycle manager."""

    def __init__(self, driver: Driver, database: str | None = None,
                 hooks: HookRegistry | None = None) -> None:
        self.restores = RestoreWatch(driver, database)
        """Refuses every read and write while a restore is unfinished (RestoreUnfinished);
        ``restores.current()`` says which, without raising."""
        self.graph = Graph(driver, database, guard=self.restores)
        self.repository = InstanceRepository(self.graph)
        self.lifecycle = InstanceLifecycleManager(self.graph, self.repository, hooks)
        self.feed = Feed(self.graph, self.repository)
        self.repository.on_commit = self.feed.publish
        self.mover = Mover(self.repository)
        self.tokens = TokenStore(self.graph)
        """Scoped API tokens: create, list, revoke, authenticate (hopper_graph/tokens.py)."""

    @property
    def hooks(self) -> HookRegistry:
        return self.lifecycle.hooks

    # -- create, read, update, delete ---------------------------------------------------
    @metrics.write("create")
    def create(self, spec: InstanceSpec | None = None, *, actor: str | None = None,
               **fields: Any) -> HopperInstance:
        """Create an instance from a spec, or from keyword fields (name, scope, ...)."""
        return self.lifecycle.create(spec or InstanceSpec(**fields), actor=actor)

    @metrics.write("bulk_create")
    def bulk_create(self, specs: Sequence[InstanceSpec],
                    actor: str | None = None) -> builtins.list[str]:
        """Import a whole hierarchy in one transaction; the on_create hooks see each
        instance (see InstanceLifecycleManager.bulk_create)."""
        return self.lifecycle.bulk_create(specs, actor=actor)

    def get(self, instance_id: str) -> HopperInstance:
        return self.repository.get(instance_id)

    def get_by_scope_and_name(self, scope: HopperScope | str, name: str) -> HopperInstance:
        return self.repository.get_by_scope_and_name(scope, name)

    def find_by_scope_and_names(self, keys: builtins.list[dict[str, str]]
                                ) -> builtins.list[HopperInstance]:
        """The instances named by ``keys`` (``{"scope", "name"}`` maps) that exist."""
        return self.repository.find_by_scope_and_names(keys)

    def list(self, *, fields: Sequence[str] | None = None, **filters: Any) -> Page:
        """A page of instances (see InstanceRepository.list); with ``fields``, each item is
        a dict of only those fields (and ``id``), as ``HopperInstance.to_dict`` gives them."""
        chosen = _chosen(fields)
        return _selected(self.repository.list(**filters), chosen)

    @metrics.write("update")
    def update(self, instance_id: str, **changes: Any) -> HopperInstance:
        """Change name, config and/or metadata, and with ``status=`` the status too, in one
        transaction (see InstanceLifecycleManager.update)."""
        return self.lifecycle.update(instance_id, **changes)

    @metrics.write("delete")
    def delete(self, instance_id: str, *, force: bool = False, actor: str | None = None,
               reason: str | None = None, expected_version: Expected = None
               ) -> DeleteResult:
        return self.lifecycle.delete(instance_id, force=force, actor=actor, reason=reason,
                                     expected_version=expected_version)

    # -- move -----------------------------------------------------------------------------
    @metrics.write("move")
    def move(self, instance_id: str, new_parent_id: str, *,
             expected_parent_id: str | None = None, actor: str | None = None,
             reason: str | None = None, expected_version: Expected = None
             ) -> HopperInstance:
        """Move an instance, with its subtree, under ``new_parent_id`` (see
        hopper_graph/move.py for the rules); ``expected_parent_id`` refuses a move made on
        a stale read. One ``move`` event; the version goes up; ids and history stay."""
        return self.mover.move(instance_id, new_parent_id,
                               expected_parent_id=expected_parent_id, actor=actor,
                               reason=reason, expected_version=expected_version)

    # -- lifecycle ------------------------------------------------------------------------
    @metrics.write(_event_kind)
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

    @metrics.write("purge")
    def purge(self, older_than: timedelta | None = None, *, dry_run: bool = False,
              actor: str | None = None, limit: int = purging.DEFAULT_LIMIT,
              batch: int = purging.DEFAULT_BATCH, after: str | None = None,
              progress: Callable[[int, int | None], None] | None = None,
              within: str | None = None) -> PurgeReport:
        """Delete the ARCHIVED EPHEMERAL instances past their retention, never one that is
        not purgeable itself; ``dry_run`` lists what would go and what stays, with why.
        At most ``limit`` are examined; ``after`` goes on from a report's ``cursor``;
        ``progress(examined, None)`` hears each page; ``within``: only that subtree."""
        return purging.purge(self.repository, self.hooks, older_than, dry_run=dry_run,
                             actor=actor, limit=limit, batch=batch, after=after,
                             progress=progress, within=within)

    def purge_archived(self, older_than: timedelta | None = None,
                       actor: str | None = None) -> builtins.list[str]:
        """The ids :meth:`purge` deleted."""
        return [item.id for item in self.purge(older_than, actor=actor).purged]

    # -- hierarchy (the repository's reads) -------------------------------------------------
    def children_page(self, parent_id: str, offset: int = 0, limit: int | None = None,
                      after: str | None = None, fields: Sequence[str] | None = None,
                      selector: Selector | str | None = None) -> Page:
        """A page of children: pass ``after=page.next`` for the next (``cursors.FIRST``
        starts paging by cursor), or an offset; ``fields`` as for :meth:`list`; only those
        a label ``selector`` matches, when given."""
        chosen = _chosen(fields)
        return _selected(self.repository.children_page(parent_id, offset, limit, after,
                                                       selector), chosen)

    def get_children(self, parent_id: str) -> builtins.list[HopperInstance]:
        return self.repository.get_children(parent_id)

    def get_ancestors(self, instance_id: str) -> builtins.list[HopperInstance]:
        return self.repository.get_ancestors(instance_id)

    def get_descendants(self, instance_id: str) -> builtins.list[HopperInstance]:
        return self.repository.get_descendants(instance_id)

    def descendants_page(self, instance_id: str, offset: int = 0,
                         limit: int | None = None, after: str | None = None,
                         fields: Sequence[str] | None = None,
                         selector: Selector | str | None = None) -> Page:
        chosen = _chosen(fields)
        return _selected(self.repository.descendants_page(instance_id, offset, limit, after,
                                                          selector), chosen)

    def get_instance_tree(self, root_id: str, max_depth: int | None = None) -> TreeNode:
        return self.repository.get_instance_tree(root_id, max_depth)

    def get_tree_fields(self, root_id: str, fields: Sequence[str],
                        max_depth: int | None = None, selector: Selector | str | None = None
                        ) -> builtins.list[dict[str, Any]]:
        """The flat tree with only ``fields`` of each instance: a tree view that needs a
        few fields reads and carries those alone (see InstanceRepository.get_tree_fields)."""
        return self.repository.get_tree_fields(root_id, fields, max_depth, selector)

    def get_flat_tree(self, root_id: str, max_depth: int | None = None,
                      selector: Selector | str | None = None) -> builtins.list[FlatTreeRow]:
        return self.repository.get_flat_tree(root_id, max_depth, selector)

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
        process. Returns a function that unsubscribes (see Feed.subscribe)."""
        return self.feed.subscribe(subscriber)

    # -- liens (hopper_graph/liens.py) -------------------------------------------------------
    def add_lien(self, instance_id: str, reason: str, origin: str | None = None, *,
                 actor: str | None = None) -> Lien:
        """Protect an instance: while it has a lien, deleting it or an ancestor (force
        included), archiving it and purging it are refused (InstanceProtected)."""
        lien: Lien = self.repository.write(liens.add, instance_id, reason, origin, actor)
        return lien

    def remove_lien(self, instance_id: str, lien_id: str, *,
                    actor: str | None = None) -> Lien:
        """Remove one of an instance's liens; returns it as it was."""
        lien: Lien = self.repository.write(liens.remove, instance_id, lien_id, actor)
        return lien

    def liens(self, instance_id: str) -> builtins.list[Lien]:
        """An instance's liens, oldest first."""
        return liens.list_rows(self.repository.rows(QUERIES.get_liens.text,
                                                    instance_id=instance_id), instance_id)

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
    @metrics.write("heartbeat")
    def heartbeat(self, instance_id: str) -> HopperInstance:
        """Record that the instance's runner is alive (refused once it is ARCHIVED)."""
        instance = self.repository.record_heartbeat(instance_id)
        if instance.status is InstanceStatus.ARCHIVED:  # the query wrote nothing
            raise InvalidTransition(f"instance {instance_id} is ARCHIVED: no heartbeats",
                                    id=instance_id, status="ARCHIVED", event="heartbeat",
                                    allowed_events=[])
        return instance

    def pending_events(self) -> int:
        """How many committed events wait for a seq: the feed's backlog (from the store's
        statistics, not a scan)."""
        return audit.pending(self.graph)[0]

    def health_check(self, instance_id: str, subtree: bool = False) -> HealthReport:
        """healthy / degraded / unhealthy / unknown, with the individual checks; with
        ``subtree``, the worst over the whole subtree and a count per status."""
        return health.health_check(self.graph, instance_id, subtree)



def _chosen(fields: Sequence[str] | None) -> tuple[str, ...] | None:
    """The fields a page keeps (id always), checked before anything is read."""
    return None if fields is None else rules.check_fields(["id", *fields])


def _selected(page: Page, chosen: tuple[str, ...] | None) -> Page:
    """The page with each instance cut to ``chosen`` fields (a dict), or as it is."""
    if chosen is not None:
        page.items = [{k: d[k] for k in chosen} for d in (i.to_dict() for i in page.items)]
    return page
