"""Small builders for hierarchies used across the integration tests."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from hopper_graph import HopperInstance, InstanceRepository, InstanceSpec

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
