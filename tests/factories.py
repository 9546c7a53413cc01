"""Small builders for hierarchies used across the tests.

Each takes a ``creator``: an InstanceRepository or an InstanceManager, since both create an
instance from an InstanceSpec (the manager runs the hooks and writes the audit too)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from hopper_graph import HopperInstance, InstanceManager, InstanceRepository, InstanceSpec

_counter = itertools.count()

Creator = InstanceRepository | InstanceManager


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def make_global(creator: Creator, name: str = "global", **config: Any) -> HopperInstance:
    """The GLOBAL instance, its config given as keywords."""
    return creator.create(InstanceSpec(name=name, scope="GLOBAL", config=config or None))


def make_project(creator: Creator, parent: HopperInstance, name: str | None = None,
                 project_id: str | None = None, **kwargs: Any) -> HopperInstance:
    """A PROJECT under parent; its project_id is its name unless given."""
    name = name or unique("project")
    return creator.create(InstanceSpec(name=name, scope="PROJECT", parent_id=parent.id,
                                       project_id=project_id or name, **kwargs))


def make_orchestration(creator: Creator, parent: HopperInstance,
                       name: str | None = None, **kwargs: Any) -> HopperInstance:
    """An ORCHESTRATION under parent, other fields of the spec given as keywords."""
    return creator.create(InstanceSpec(name=name or unique("run"), scope="ORCHESTRATION",
                                       parent_id=parent.id, **kwargs))


def make_run(creator: Creator, parent: HopperInstance, name: str | None = None,
             **config: Any) -> HopperInstance:
    """An EPHEMERAL ORCHESTRATION under parent, its config given as keywords."""
    return make_orchestration(creator, parent, name, config=config or None)


def make_tree(manager: InstanceManager) -> tuple[HopperInstance, ...]:
    """GLOBAL g -> PROJECTs a and b; a has the ORCHESTRATION a-run. Nothing started."""
    g = make_global(manager, name="g")
    a = make_project(manager, g, name="a")
    b = make_project(manager, g, name="b")
    return g, a, b, make_orchestration(manager, a, name="a-run")


def make_two_projects(manager: InstanceManager) -> dict[str, str]:
    """A started GLOBAL with two started PROJECTs a and b, each with the runs 1 and 2
    (CREATED); the ids by name: global, a, b, a1, a2, b1, b2."""
    g = make_global(manager)
    manager.start(g.id)
    ids = {"global": g.id}
    for name in ("a", "b"):
        p = make_project(manager, g, name=f"project-{name}", project_id=name)
        manager.start(p.id)
        for run in ("1", "2"):
            ids[f"{name}{run}"] = make_orchestration(manager, p, name=f"run-{name}{run}").id
        ids[name] = p.id
    return ids


def make_started_project(manager: InstanceManager) -> HopperInstance:
    """A started GLOBAL and, under it, the started PROJECT "project" (project_id "proj")."""
    g = make_global(manager)
    manager.start(g.id)
    p = make_project(manager, g, name="project", project_id="proj")
    manager.start(p.id)
    return p


def chain_specs(length: int, parent_id: str, project_id: str = "deep") -> list[InstanceSpec]:
    """A PROJECT followed by ORCHESTRATIONs, each the child of the one before."""
    specs = [InstanceSpec(id=str(uuid.uuid4()), name=unique("chain-project"), scope="PROJECT",
                          parent_id=parent_id, project_id=project_id)]
    for _ in range(length - 1):
        specs.append(InstanceSpec(id=str(uuid.uuid4()), name=unique("chain"),
                                  scope="ORCHESTRATION", parent_id=specs[-1].id))
    return specs


def build_sample(driver: Any, database: str | None) -> InstanceManager:
    """A GLOBAL, a PROJECT and three runs in several states, and a deleted PROJECT: what
    the export, import and check tests carry through the command line."""
    manager = InstanceManager(driver, database)
    g = manager.create(name="global", scope="GLOBAL", metadata={"env": "test"})
    manager.start(g.id)
    p = manager.create(name="alpha", scope="PROJECT", parent_id=g.id, project_id="alpha",
                       config={"tags": ["x"]})
    runs = [manager.create(name=f"run-{i}", scope="ORCHESTRATION", parent_id=p.id,
                           metadata={"note": "ünïcode ✓"}) for i in range(3)]
    manager.start(p.id)
    manager.start(runs[0].id)
    manager.start(runs[1].id)
    manager.stop(runs[1].id)  # an EPHEMERAL run: archived as it stops
    gone = manager.create(name="gone", scope="PROJECT", parent_id=g.id, project_id="gone")
    manager.delete(gone.id)
    return manager
