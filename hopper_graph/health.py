"""Health: how an instance (or a whole subtree) is doing, from one read.

Each instance gets four checks: its parent's status fits its own, its heartbeat is within
the timeout it inherits (``health.heartbeat_timeout_seconds``), it has headroom under its
``max_child_instances``, and its stored config still validates. Its health is the worst of
them (fail -> unhealthy, warn -> degraded, unknown -> unknown); a subtree's is the worst of
its instances', with a count per health.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hopper_graph import config as scope_config
from hopper_graph import rules
from hopper_graph.enums import InstanceStatus
from hopper_graph.errors import ValidationError
from hopper_graph.graph import Graph
from hopper_graph.models import HopperInstance
from hopper_graph.queries import QUERIES
from hopper_graph.rows import instance_from_row
from hopper_graph.statements import not_found, utcnow

HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN = "healthy", "degraded", "unhealthy", "unknown"
_RANK = {HEALTHY: 0, UNKNOWN: 1, DEGRADED: 2, UNHEALTHY: 3}


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


def health_check(graph: Graph, instance_id: str, subtree: bool = False) -> HealthReport:
    """healthy / degraded / unhealthy / unknown, with the individual checks; with
    ``subtree``, the worst over the whole subtree and a count per status."""
    query = QUERIES.get_subtree_health_facts if subtree else QUERIES.get_health_facts
    rows = graph.read_rows(query.text, id=instance_id)
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
    return _roll_up(reports) if subtree else reports[0]


def _roll_up(reports: list[HealthReport]) -> HealthReport:
    """The root's report (the first) as the subtree's: the worst health in it, a count
    per health, and the first hundred unhealthy ids."""
    root = reports[0]
    root.subtree = {s: 0 for s in _RANK}
    for report in reports:
        root.subtree[report.status] += 1
    root.unhealthy = [r.id for r in reports if r.status == UNHEALTHY][:100]
    root.status = max(reports, key=lambda r: _RANK[r.status]).status
    return root


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
    except ValidationError as exc:  # a template change can make an old config invalid
        return HealthCheck("config", "fail",
                           f"config no longer validates: {exc.errors or exc}")
    return HealthCheck("config", "pass", "valid")
