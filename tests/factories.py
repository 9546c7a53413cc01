"""Small builders for hierarchies used across the integration tests."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from hopper_graph import HopperInstance, InstanceManager, InstanceRepository, InstanceSpec

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


def make_global(repo: InstanceRepository, **config: Any) -> HopperInstance:
    return repo.create(InstanceSpec(name="global", scope="GLOBAL", config=config or None))


def make_project(repo: InstanceRepository, parent: HopperInstance, name: str | None = None,
                 project_id: str | None = None, **kwargs: Any) -> HopperInstance:
    name = name or unique("project")
    return repo.create(InstanceSpec(name=name, scope="PROJECT", parent_id=parent.id,
                                    project_id=project_id or name, **kwargs))


def make_orchestration(repo: InstanceRepository, parent: HopperInstance,
                       name: str | None = None, **kwargs: Any) -> HopperInstance:
    return repo.create(InstanceSpec(name=name or unique("run"), scope="ORCHESTRATION",
                                    parent_id=parent.id, **kwargs))


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
