"""The invariant checker: silent on graphs the library builds, and each kind of violation
found on a graph broken on purpose with plain Cypher."""

from __future__ import annotations

import itertools
import json
import uuid

import pytest

from hopper_graph import HopperScope, InstanceSpec
from hopper_graph.audit import append_events, new_event
from hopper_graph.checker import check_invariants
from hopper_graph.enums import ALLOWED_PARENT_SCOPES, DEFAULT_INSTANCE_TYPE
from hopper_graph.queries import QUERIES
from hopper_graph.schema import MIGRATIONS
from hopper_graph.statements import utcnow
from tests.conftest import wipe
from tests.factories import chain_specs, make_global, make_orchestration, make_project

_names = itertools.count()


# -- helpers: write the graph directly, as a bug or a hand edit would ----------------------
def cypher(driver, database, query, **params):
    records, _, _ = driver.execute_query(query, params, database_=database)
    return records


def add_events(driver, database, *events):
    with driver.session(database=database) as session:
        session.execute_write(lambda tx: append_events(tx, list(events)))


def raw_instance(driver, database, scope, parent=None, status="CREATED", **extra):
    """An instance written with Cypher alone (no rule checked), with its create event and
    a consistent parent_id and depth."""
    props = {
        "id": str(uuid.uuid4()), "name": f"raw-{next(_names)}", "scope": scope,
        "status": status, "instance_type": DEFAULT_INSTANCE_TYPE[HopperScope(scope)].value,
        "config": json.dumps({"limits": {"max_child_instances": 10}}), "config_set": "{}",
        "metadata": "{}", "created_at": utcnow(), "updated_at": utcnow(), "version": 1,
        "depth": 0, "parent_id": None, "project_id": None,
    }
    if parent is not None:
        props |= {"parent_id": parent["id"], "depth": parent["depth"] + 1,
                  "project_id": parent.get("project_id")}
    props |= extra
    cypher(driver, database, "CREATE (n:HopperInstance) SET n = $props", props=props)
    if parent is not None:
        link(driver, database, parent["id"], props["id"])
    add_events(driver, database, new_event(props["id"], "create", None, status, utcnow()))
    return props


def link(driver, database, parent_id, child_id):
    cypher(driver, database, "MATCH (p:HopperInstance {id: $p}), (c:HopperInstance {id: $c}) "
           "CREATE (p)-[:PARENT_OF]->(c)", p=parent_id, c=child_id)


def set_props(driver, database, instance_id, **props):
    cypher(driver, database, "MATCH (n:HopperInstance {id: $id}) SET n += $props",
           id=instance_id, props=props)


def force_status(driver, database, instance_id, status):
    """Set a status and write the matching audit event, as if a transition had done it."""
    previous = cypher(driver, database, "MATCH (n:HopperInstance {id: $id}) RETURN n.status "
                      "AS s", id=instance_id)[0]["s"]
    set_props(driver, database, instance_id, status=status)
    add_events(driver, database, new_event(instance_id, "forced", previous, status, utcnow()))


def kinds(violations):
    return {v.kind for v in violations}


def of_kind(violations, kind):
    return [v for v in violations if v.kind == kind]


@pytest.fixture
def base(manager, driver, database):
    """GLOBAL (ACTIVE) -> PROJECT p (ACTIVE) -> ORCHESTRATION o (CREATED), all via the library."""
    g = make_global(manager)
    p = make_project(manager, g, name="p")
    o = make_orchestration(manager, p, name="o")
    manager.start(g.id)
    manager.start(p.id)
    assert check_invariants(driver, database) == []
    return {"g": g, "p": p, "o": o}


def node(driver, database, instance_id):
    return cypher(driver, database, "MATCH (n:HopperInstance {id: $id}) RETURN n {.*} AS n",
                  id=instance_id)[0]["n"]


# -- clean graphs -------------------------------------------------------------------------
def test_an_empty_graph_has_no_violations(clean_graph, database):
    assert check_invariants(clean_graph, database) == []


def test_a_graph_built_through_the_manager_has_no_violations(manager, driver, database):
    g = make_global(manager, limits={"max_depth": 200})
    manager.start(g.id)
    p1 = make_project(manager, g, name="p1", config={"limits": {"max_child_instances": 3}})
    sub = make_project(manager, p1, name="p1-sub", project_id="p1s")
    runs = [make_orchestration(manager, p1, name=f"run-{i}") for i in range(2)]
    phase = make_orchestration(manager, runs[0], name="phase")
    p2 = make_project(manager, g, name="p2")
    doomed = make_orchestration(manager, p2, name="doomed")
    for instance in (p1, sub, *runs, phase, p2, doomed):
        manager.start(instance.id)
    manager.pause(phase.id)
    manager.pause(p1.id)          # cascades to the ACTIVE ones below
    manager.resume(p1.id)         # resumes what it paused, not the hand-paused phase
    manager.stop(runs[1].id)      # EPHEMERAL: archived at once
    manager.stop(sub.id)
    manager.archive(sub.id)
    manager.update(p2.id, metadata={"owner": "ops"}, config={"tags": ["x"]})
    manager.heartbeat(p1.id)
    manager.delete(doomed.id, force=True)
    manager.bulk_create(chain_specs(150, p2.id))
    manager.stop(g.id)            # everything stops; EPHEMERAL ones get archived
    manager.start(g.id)
    assert check_invariants(driver, database) == []


# -- each kind ----------------------------------------------------------------------------
def test_more_than_one_global(base, driver, database):
    # The GlobalInstance label carries the constraint; a node without it slips past.
    second = raw_instance(driver, database, "GLOBAL", instance_type="SINGLETON")
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"multiple-globals"}
    assert set(violations[0].instance_ids) == {base["g"].id, second["id"]}


def test_non_global_without_a_parent(base, driver, database):
    orphan = raw_instance(driver, database, "ORCHESTRATION")
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"missing-parent"}
    assert violations[0].instance_id == orphan["id"]
    assert "no parent" in violations[0].message


def test_more_than_one_parent(base, driver, database, manager):
    other = manager.create(name="p-other", scope="PROJECT", parent_id=base["g"].id,
                           project_id="po")
    link(driver, database, other.id, base["o"].id)
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"multiple-parents"}
    assert set(violations[0].instance_ids) == {base["o"].id, base["p"].id, other.id}


@pytest.mark.parametrize(("parent_scope", "child_scope"),
                         list(itertools.product(list(HopperScope), repeat=2)),
                         ids=lambda s: s.value)
def test_parent_scope_rules(base, driver, database, parent_scope, child_scope):
    parent = node(driver, database, base["g"].id) if parent_scope is HopperScope.GLOBAL \
        else raw_instance(driver, database, parent_scope.value, parent=node(
            driver, database, base["p"].id if parent_scope is HopperScope.PROJECT
            else base["o"].id))
    child = raw_instance(driver, database, child_scope.value, parent=parent)
    found = [v for v in of_kind(check_invariants(driver, database), "parent-scope")
             if v.instance_id == child["id"]]
    allowed = parent_scope in ALLOWED_PARENT_SCOPES[child_scope]
    assert bool(found) is not allowed
    if found:
        assert found[0].instance_ids == (child["id"], parent["id"])


def test_parent_of_cycle(base, driver, database):
    a = raw_instance(driver, database, "ORCHESTRATION", project_id="p")
    b = raw_instance(driver, database, "ORCHESTRATION", parent=a)
    link(driver, database, b["id"], a["id"])
    set_props(driver, database, a["id"], parent_id=b["id"])
    violations = check_invariants(driver, database)
    cycles = of_kind(violations, "cycle")
    assert [set(c.instance_ids) for c in cycles] == [{a["id"], b["id"]}]
    assert kinds(violations) == {"cycle", "depth-mismatch"}  # a cycle has no true depth


def test_self_loop_is_a_cycle(base, driver, database):
    link(driver, database, base["o"].id, base["o"].id)
    cycles = of_kind(check_invariants(driver, database), "cycle")
    assert [c.instance_ids for c in cycles] == [(base["o"].id,)]


@pytest.fixture
def without_name_constraint(driver, database):
    """Drop the (name, scope) constraint for one test; the graph is wiped before it is put
    back (duplicates would stop it)."""
    statement = next(s for s in MIGRATIONS[0].statements if "hopper_instance_name_scope" in s)
    cypher(driver, database, "DROP CONSTRAINT hopper_instance_name_scope IF EXISTS")
    try:
        yield
    finally:
        wipe(driver, database)
        cypher(driver, database, statement)


def test_duplicate_name_and_scope(base, driver, database, without_name_constraint):
    twin = raw_instance(driver, database, "PROJECT", parent=node(driver, database,
                                                                 base["g"].id), name="p")
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"duplicate-name"}
    assert set(violations[0].instance_ids) == {base["p"].id, twin["id"]}
    assert "'p'" in violations[0].message


def test_children_above_the_parents_limit(base, driver, database, manager):
    manager.create(name="o2", scope="ORCHESTRATION", parent_id=base["p"].id)
    # The library refuses to lower a limit below the children (test_child_limit_lowered):
    # written past it, as a hand-edited import could.
    config = manager.get(base["p"].id).config
    config["limits"]["max_child_instances"] = 1
    set_props(driver, database, base["p"].id, config=json.dumps(config))
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"child-limit"}
    assert violations[0].instance_id == base["p"].id
    assert "2 children" in violations[0].message


def test_unreadable_config_of_a_parent(base, driver, database):
    set_props(driver, database, base["p"].id, config="{not json")
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"config-unreadable"}


def test_parent_id_property_differs_from_the_edge(base, driver, database):
    set_props(driver, database, base["o"].id, parent_id=base["g"].id)
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"parent-id-mismatch"}
    assert violations[0].instance_id == base["o"].id


def test_depth_property_inconsistent(base, driver, database):
    set_props(driver, database, base["o"].id, depth=7)
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"depth-mismatch"}
    assert "expected 2" in violations[0].message


def test_status_differs_from_the_last_event(base, driver, database):
    set_props(driver, database, base["p"].id, status="CREATED")
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"status-event-mismatch"}
    assert "says ACTIVE" in violations[0].message


def test_status_check_sees_a_missing_history_and_a_delete(base, driver, database):
    cypher(driver, database, "MATCH (e:InstanceEvent {instance_id: $id}) DETACH DELETE e",
           id=base["o"].id)
    add_events(driver, database, new_event(base["p"].id, "delete", "ACTIVE", None, utcnow()))
    by_id = {v.instance_id: v for v in check_invariants(driver, database)}
    assert {v.kind for v in by_id.values()} == {"status-event-mismatch"}
    assert "no audit event" in by_id[base["o"].id].message
    assert "is a delete" in by_id[base["p"].id].message


@pytest.mark.parametrize(("parent_status", "child_status", "broken"), [
    ("CREATED", "ACTIVE", True),
    ("PAUSED", "ACTIVE", True),
    ("STOPPED", "PAUSED", True),
    ("PAUSED", "PAUSED", False),
    ("ACTIVE", "PAUSED", False),
])
def test_running_under_a_parent_that_does_not_allow_it(base, driver, database, parent_status,
                                                       child_status, broken):
    force_status(driver, database, base["p"].id, parent_status)
    project = node(driver, database, base["p"].id)
    child = raw_instance(driver, database, "PROJECT", parent=project, status=child_status,
                         project_id="child")
    found = of_kind(check_invariants(driver, database), "running-under-parent")
    assert bool(found) is broken
    if broken:
        assert found[0].instance_ids == (child["id"], base["p"].id)


def test_ephemeral_left_stopped(base, driver, database):
    force_status(driver, database, base["o"].id, "ACTIVE")
    force_status(driver, database, base["o"].id, "STOPPED")
    violations = check_invariants(driver, database)
    assert kinds(violations) == {"ephemeral-stopped"}
    assert violations[0].instance_id == base["o"].id


@pytest.mark.slow
def test_a_large_bulk_hierarchy_checks_clean_in_linear_work(manager, driver, database):
    """20k instances, one query per rule: clean, and each rule's query does work in
    proportion to the graph (db hits by PROFILE). A rule that seeks each instance's latest
    event once planned a scan of the whole event index per instance: 20k x 20k."""
    g = make_global(manager, limits={"max_child_instances": 1000})
    specs = []
    for p in range(200):
        project = InstanceSpec(id=str(uuid.uuid4()), name=f"bulk-p{p}", scope="PROJECT",
                               parent_id=g.id, project_id=f"bulk-{p}",
                               config={"limits": {"max_child_instances": 200}})
        specs.append(project)
        specs += [InstanceSpec(id=str(uuid.uuid4()), name=f"bulk-p{p}-r{r}",
                               scope="ORCHESTRATION", parent_id=project.id)
                  for r in range(99)]
    manager.bulk_create(specs)
    assert check_invariants(driver, database) == []
    instances = len(specs) + 1
    for query in (q for q in QUERIES if q.source == "checker.cypher"):
        _, summary, _ = driver.execute_query(f"PROFILE {query.text}", database_=database)
        assert _db_hits(summary.profile) < 20 * instances, query.name


def _db_hits(plan: dict) -> int:
    return int(plan.get("dbHits", 0)) + sum(_db_hits(c) for c in plan.get("children", []))
