"""A limit lowered below the children there are (issue 24, item 4): refused with a 409 that
names the count, so the API and ``check`` always agree that children never exceed it."""

from __future__ import annotations

import pytest

from hopper_graph import InstanceSpec, LimitExceeded
from hopper_graph.checker import check_invariants
from tests.factories import make_global, make_project, make_run
from tests.threads import race


def _limit(n: int) -> dict:
    return {"limits": {"max_child_instances": n}}


def test_a_limit_below_the_children_there_are_is_refused_naming_the_count(manager, driver,
                                                                           database):
    g = make_global(manager)
    p = make_project(manager, g, name="p")
    runs = [make_run(manager, p) for _ in range(3)]
    with pytest.raises(LimitExceeded) as err:
        manager.update(p.id, config=_limit(1))
    assert "has 3 children" in err.value.message
    assert err.value.details["child_count"] == 3
    assert "config.limits.max_child_instances" in err.value.errors
    assert manager.get(p.id).config["limits"]["max_child_instances"] != 1
    with pytest.raises(LimitExceeded):  # with a status change too: nothing applies
        manager.update(p.id, config=_limit(2), status="ACTIVE")
    assert manager.get(p.id).status.value == "CREATED"
    manager.update(p.id, config=_limit(3))  # as many as there are: fine
    manager.archive(runs[0].id)  # ARCHIVED children do not count
    manager.update(p.id, config=_limit(2))
    assert check_invariants(driver, database) == []


def test_a_limit_lowered_while_creates_race_never_ends_below_the_children(manager, driver,
                                                                           database):
    g = make_global(manager)
    p = make_project(manager, g, name="p", config=_limit(20))

    def act(i: int) -> object:
        if i == 0:
            return manager.update(p.id, config=_limit(4))
        return manager.create(InstanceSpec(name=f"run-{i}", scope="ORCHESTRATION",
                                           parent_id=p.id))

    outcomes = race(act, 10)
    limit = manager.get(p.id).config["limits"]["max_child_instances"]
    children = len(manager.get_children(p.id))
    assert children <= limit
    assert all(isinstance(o, LimitExceeded) or not isinstance(o, Exception) for o in outcomes)
    assert [v for v in check_invariants(driver, database)
            if v.kind == "child-limit"] == []
