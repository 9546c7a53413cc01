"""Threads racing on the real server: exactly the allowed number of creates succeed."""

from __future__ import annotations

import threading
from collections import Counter

from hopper_graph import (
    DuplicateName,
    GlobalAlreadyExists,
    HopperGraphError,
    InstanceSpec,
    LimitExceeded,
)
from tests.factories import make_global, make_project

THREADS = 12


def race(fn, n=THREADS):
    """Run fn(i) in n threads released together; return each outcome (value or exception)."""
    barrier = threading.Barrier(n)
    outcomes = [None] * n

    def run(i):
        barrier.wait()
        try:
            outcomes[i] = fn(i)
        except HopperGraphError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def kinds(outcomes):
    return Counter("ok" if not isinstance(o, Exception) else type(o).__name__
                   for o in outcomes)


def test_racing_globals_exactly_one_wins(repo):
    outcomes = race(lambda i: repo.create(InstanceSpec(name=f"g{i}", scope="GLOBAL")))
    assert kinds(outcomes) == {"ok": 1, "GlobalAlreadyExists": THREADS - 1}
    assert repo.list(scope="GLOBAL").total == 1
    assert all(isinstance(o, GlobalAlreadyExists) for o in outcomes if isinstance(o, Exception))


def test_racing_same_name_exactly_one_wins(repo):
    g = make_global(repo, limits={"max_child_instances": 100})
    outcomes = race(lambda i: repo.create(InstanceSpec(
        name="contested", scope="PROJECT", parent_id=g.id, project_id=f"p{i}")))
    assert kinds(outcomes) == {"ok": 1, "DuplicateName": THREADS - 1}
    assert all(isinstance(o, DuplicateName) for o in outcomes if isinstance(o, Exception))
    assert repo.list(scope="PROJECT").total == 1


def test_racing_for_the_last_child_slots(repo):
    g = make_global(repo)
    p = make_project(repo, g, config={"limits": {"max_child_instances": 5}})
    for i in range(3):
        repo.create(InstanceSpec(name=f"early{i}", scope="ORCHESTRATION", parent_id=p.id))
    outcomes = race(lambda i: repo.create(InstanceSpec(
        name=f"late{i}", scope="ORCHESTRATION", parent_id=p.id)))
    assert kinds(outcomes) == {"ok": 2, "LimitExceeded": THREADS - 2}
    assert all(isinstance(o, LimitExceeded) for o in outcomes if isinstance(o, Exception))
    assert len(repo.get_children(p.id)) == 5


def test_racing_singletons_under_one_parent(repo):
    g = make_global(repo)
    p = make_project(repo, g)
    outcomes = race(lambda i: repo.create(InstanceSpec(
        name=f"only{i}", scope="ORCHESTRATION", parent_id=p.id, instance_type="SINGLETON")))
    assert kinds(outcomes) == {"ok": 1, "ScopeRuleViolation": THREADS - 1}
    assert len(repo.get_children(p.id)) == 1
