"""The benchmark's hierarchies, built through the library's bulk import."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from hopper_graph import InstanceManager, InstanceSpec


def _id() -> str:
    return str(uuid.uuid4())


@dataclass
class Chain:
    global_id: str
    ids: list[str]  # the PROJECT at depth 1, then ORCHESTRATIONs down to the leaf

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


def make_global(manager: InstanceManager, max_depth: int = 64,
                max_children: int = 2000) -> str:
    return manager.create(name="global", scope="GLOBAL", config={
        "limits": {"max_depth": max_depth, "max_child_instances": max_children}}).id


def chain(manager: InstanceManager, depth: int = 5000) -> Chain:
    """A GLOBAL, a PROJECT, then ORCHESTRATIONs each under the one before: leaf at ``depth``."""
    global_id = make_global(manager, max_depth=depth + 10)
    specs = [InstanceSpec(id=_id(), name="chain-project", scope="PROJECT", parent_id=global_id,
                          project_id="chain")]
    for level in range(2, depth + 1):
        specs.append(InstanceSpec(id=_id(), name=f"chain-{level}", scope="ORCHESTRATION",
                                  parent_id=specs[-1].id, instance_type="PERSISTENT"))
    manager.bulk_create(specs)
    return Chain(global_id, [s.id for s in specs])


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
    parent = manager.create(name="wide", scope="PROJECT", parent_id=global_id,
                            project_id="wide",
                            config={"limits": {"max_child_instances": children + 10}})
    specs = [InstanceSpec(id=_id(), name=f"wide-{i}", scope="ORCHESTRATION",
                          parent_id=parent.id) for i in range(children)]
    manager.bulk_create(specs)
    return Wide(global_id, parent.id, [s.id for s in specs])
