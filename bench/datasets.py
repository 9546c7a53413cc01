"""The benchmark's hierarchies, built through the library's bulk import."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
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
        "metadata": "{}", "labels": "{}", "version": 1, "depth": 0},
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
                spec.config or {}), "metadata": "{}",
            "labels": json.dumps(dict(sorted((spec.labels or {}).items()))),
            "version": 1, "depth": depth[spec.id]},
            "event": {"id": _id(), "instance_id": spec.id, "event": "create",
                      "to_status": "CREATED", "seq": 10**12 + index}})
    return rows


@dataclass
class Movable:
    """Two PROJECTs under a GLOBAL; under the first, one run whose subtree (the run
    included) holds ``size`` instances: what the move phase moves back and forth."""

    global_id: str
    projects: list[str]
    root: str
    specs: list[InstanceSpec] = field(default_factory=list)


def movable_specs(global_id: str, size: int = 1000, fanout: int = 20) -> Movable:
    """The move phase's hierarchy: the run's subtree filled breadth first, ``fanout``
    children a run (an ORCHESTRATION's default limits.max_child_instances)."""
    projects = [InstanceSpec(id=_id(), name=f"move-project-{p}", scope="PROJECT",
                             parent_id=global_id, project_id=f"move-{p}") for p in range(2)]
    root = InstanceSpec(id=_id(), name="move-root", scope="ORCHESTRATION",
                        parent_id=projects[0].id)
    runs = [root]
    for index in range(1, size):
        parent = runs[(index - 1) // fanout]
        runs.append(InstanceSpec(id=_id(), name=f"move-run-{index}", scope="ORCHESTRATION",
                                 parent_id=parent.id))
    assert root.id is not None
    return Movable(global_id, [str(p.id) for p in projects], root.id, [*projects, *runs])


SCALE_PROJECT = 1000
"""Instances in each PROJECT of the scale phase (the PROJECT and its runs): well under the
child limit its config sets, so no parent is ever near full."""
SCALE_BATCH = 20_000
"""Instances per ``bulk_create`` (one transaction) while the scale phase grows the graph."""


@dataclass
class Scale:
    """The scale phase's graph: a GLOBAL over PROJECTs of SCALE_PROJECT instances each.
    The instances timed all sit in the first PROJECT and keep their place as it grows."""

    global_id: str
    parent: str  # the first PROJECT: its children are paged, the creates go under it
    deep: str  # an ORCHESTRATION at depth 4: GLOBAL, PROJECT, sub-PROJECT, run, phase run
    runner: str  # an ORCHESTRATION of the first PROJECT, paused and resumed
    size: int  # instances in the graph, the GLOBAL included
    projects: int  # PROJECTs directly under the GLOBAL


def scale_base(manager: InstanceManager, size: int, largest: int) -> Scale:
    """A GLOBAL (whose child limit leaves room to grow to ``largest``) and ``size - 1``
    instances under it, in PROJECTs of SCALE_PROJECT."""
    global_id = make_global(manager, max_children=largest // SCALE_PROJECT + 10)
    first = _scale_project(global_id, 0, min(SCALE_PROJECT, size - 1))
    specs, made = list(first), 1
    while len(specs) < size - 1:
        specs += _scale_project(global_id, made, min(SCALE_PROJECT, size - 1 - len(specs)))
        made += 1
    manager.bulk_create(specs)
    parent, sub, run, phase, runner = (s.id for s in first[:5])
    assert parent and phase and runner and sub and run
    return Scale(global_id, parent, phase, runner, size, made)


def scale_growth(scale: Scale, size: int) -> Iterator[list[InstanceSpec]]:
    """Batches of about SCALE_BATCH instances, whole PROJECTs each, that grow ``scale`` to
    ``size`` instances (built one batch at a time, so memory stays a batch's)."""
    batch: list[InstanceSpec] = []
    while scale.size < size:
        count = min(SCALE_PROJECT, size - scale.size)
        batch += _scale_project(scale.global_id, scale.projects, count)
        scale.projects += 1
        scale.size += count
        if len(batch) >= SCALE_BATCH or scale.size >= size:
            yield batch
            batch = []


def _scale_project(global_id: str, index: int, count: int) -> list[InstanceSpec]:
    """``count`` instances: a PROJECT under the GLOBAL and runs under it; the first one's
    second to fourth are a sub-PROJECT, a run under it and a phase run under that."""
    limits = {"limits": {"max_child_instances": SCALE_PROJECT + 1000}}
    name = f"scale-{index}"
    project = InstanceSpec(id=_id(), name=name, scope="PROJECT", parent_id=global_id,
                           project_id=name, config=limits)
    specs = [project]
    if index == 0 and count >= 5:
        sub = InstanceSpec(id=_id(), name=f"{name}-sub", scope="PROJECT", parent_id=project.id,
                           project_id=f"{name}-sub")
        run = InstanceSpec(id=_id(), name=f"{name}-sub-run", scope="ORCHESTRATION",
                           parent_id=sub.id)
        phase = InstanceSpec(id=_id(), name=f"{name}-sub-run-phase", scope="ORCHESTRATION",
                             parent_id=run.id)
        specs += [sub, run, phase]
    specs += [InstanceSpec(id=_id(), name=f"{name}-run-{i}", scope="ORCHESTRATION",
                           parent_id=project.id) for i in range(count - len(specs))]
    return specs


TEAMS = ("infra", "web", "data", "ml")
"""The labelled runs' teams, in turn: a quarter of them carry each."""


def labelled_specs(project_id: str, count: int) -> list[InstanceSpec]:
    """``count`` ORCHESTRATIONs under one PROJECT, each labelled with a team (in turn), an
    env (in turn, of three) and, every tenth, ``legacy``: a selector's matches are spread
    through the creation order, as a fleet's are."""
    return [InstanceSpec(id=_id(), name=f"labelled-{k}", scope="ORCHESTRATION",
                         parent_id=project_id,
                         labels={"team": TEAMS[k % len(TEAMS)],
                                 "env": ("prod", "staging", "dev")[k % 3],
                                 **({"legacy": "yes"} if k % 10 == 0 else {})})
            for k in range(count)]
