"""The benchmark's hierarchies, built through the library's bulk import."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from hopper_graph import InstanceManager, InstanceSpec
from hopper_graph.config import full_config_json


def _id() -> str:
    return str(uuid.uuid4())


@dataclass
class Chain:
    global_id: str
    ids: list[str]  # the PROJECT at depth 1, then ORCHESTRATIONs down to the leaf
    specs: list[InstanceSpec] = field(default_factory=list)

    @property
    def leaf(self) -> str:
        return self.ids[-1]


@dataclass
class Forest:
    global_id: str
    projects: list[str]
    orchestrations: list[str] = field(default_factory=list)
    specs: list[InstanceSpec] = field(default_factory=list)


@dataclass
class Wide:
    global_id: str
    parent_id: str
    children: list[str]
    specs: list[InstanceSpec] = field(default_factory=list)  # the PROJECT, then its children


def global_config(max_depth: int = 64, max_children: int = 2000) -> dict[str, Any]:
    return {"limits": {"max_depth": max_depth, "max_child_instances": max_children}}


def make_global(manager: InstanceManager, max_depth: int = 64,
                max_children: int = 2000) -> str:
    return manager.create(name="global", scope="GLOBAL",
                          config=global_config(max_depth, max_children)).id


def chain(manager: InstanceManager, depth: int = 5000) -> Chain:
    """A GLOBAL, a PROJECT, then ORCHESTRATIONs each under the one before: leaf at ``depth``."""
    global_id = make_global(manager, max_depth=depth + 10)
    specs = [InstanceSpec(id=_id(), name="chain-project", scope="PROJECT", parent_id=global_id,
                          project_id="chain")]
    for level in range(2, depth + 1):
        specs.append(InstanceSpec(id=_id(), name=f"chain-{level}", scope="ORCHESTRATION",
                                  parent_id=specs[-1].id, instance_type="PERSISTENT"))
    manager.bulk_create(specs)
    return Chain(global_id, [s.id for s in specs if s.id], specs)


def forest_specs(global_id: str, total: int = 100_000, projects: int = 1000) -> Forest:
    """1 GLOBAL (given), ``projects`` PROJECTs (a fifth of them sub-projects), and
    ORCHESTRATIONs for the rest; every tenth run has two nested phase runs."""
    forest = Forest(global_id, [])
    limits = {"limits": {"max_child_instances": 1000}}
    top = projects * 4 // 5
    for p in range(projects):
        parent = global_id if p < top else forest.projects[(p - top) // 2]
        spec = InstanceSpec(id=_id(), name=f"project-{p}", scope="PROJECT", parent_id=parent,
                            project_id=f"project-{p}", config=limits)
        forest.specs.append(spec)
        forest.projects.append(spec.id)
    remaining = total - 1 - projects
    run = 0
    while remaining > 0:
        project = forest.projects[run % projects]
        spec = InstanceSpec(id=_id(), name=f"run-{run}", scope="ORCHESTRATION",
                            parent_id=project)
        forest.specs.append(spec)
        forest.orchestrations.append(spec.id)
        remaining -= 1
        if run % 10 == 0:
            for phase in range(min(2, remaining)):
                child = InstanceSpec(id=_id(), name=f"run-{run}-phase-{phase}",
                                     scope="ORCHESTRATION", parent_id=spec.id)
                forest.specs.append(child)
                forest.orchestrations.append(child.id)
                remaining -= 1
        run += 1
    return forest


def wide(manager: InstanceManager, children: int = 10_000) -> Wide:
    """A GLOBAL with one PROJECT that has ``children`` ORCHESTRATION children."""
    global_id = make_global(manager)
    parent = InstanceSpec(id=_id(), name="wide", scope="PROJECT", parent_id=global_id,
                          project_id="wide",
                          config={"limits": {"max_child_instances": children + 10}})
    manager.create(parent)
    specs = [InstanceSpec(id=_id(), name=f"wide-{i}", scope="ORCHESTRATION",
                          parent_id=parent.id) for i in range(children)]
    manager.bulk_create(specs)
    assert parent.id is not None
    return Wide(global_id, parent.id, [s.id for s in specs if s.id], [parent, *specs])


def stored_config(scope: str, config: dict[str, Any] | None = None) -> str:
    """The configuration snapshot (JSON) the library stores for an instance of ``scope``
    created with ``config``: the peer stores the same text."""
    return full_config_json(scope, config)


_DEFAULT_TYPE = {"GLOBAL": "SINGLETON", "PROJECT": "PERSISTENT", "ORCHESTRATION": "EPHEMERAL"}


def plain_global(global_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """The GLOBAL as ``plain_rows`` would give it (for the peer, which holds the GLOBAL too)."""
    return {"parent_id": None, "props": {
        "id": global_id, "name": "global", "scope": "GLOBAL", "status": "CREATED",
        "instance_type": "SINGLETON", "parent_id": None, "project_id": None,
        "config": stored_config("GLOBAL", config), "config_set": json.dumps(config),
        "metadata": "{}", "version": 1, "depth": 0},
        "event": {"id": _id(), "instance_id": global_id, "event": "create",
                  "to_status": "CREATED", "seq": 10**12 - 1}}


def plain_rows(specs: list[InstanceSpec], global_id: str) -> list[dict[str, Any]]:
    """What the import floor (and the PostgreSQL peer) writes for ``specs``: each
    instance's stored properties as the library would store them, its parent, and its
    create event (seq numbers far from the library's)."""
    depth = {global_id: 0}
    project_of: dict[str, str | None] = {global_id: None}
    rows = []
    for index, spec in enumerate(specs):
        assert spec.id is not None and spec.parent_id is not None
        scope = str(getattr(spec.scope, "value", spec.scope))
        depth[spec.id] = depth[spec.parent_id] + 1
        project_of[spec.id] = spec.project_id or project_of[spec.parent_id]
        rows.append({"parent_id": spec.parent_id, "props": {
            "id": spec.id, "name": spec.name, "scope": scope, "status": "CREATED",
            "instance_type": str(getattr(spec.instance_type, "value", spec.instance_type)
                                 or _DEFAULT_TYPE[scope]),
            "parent_id": spec.parent_id, "project_id": project_of[spec.id],
            "config": full_config_json(scope, spec.config), "config_set": json.dumps(
                spec.config or {}), "metadata": "{}", "version": 1, "depth": depth[spec.id]},
            "event": {"id": _id(), "instance_id": spec.id, "event": "create",
                      "to_status": "CREATED", "seq": 10**12 + index}})
    return rows
