"""Hierarchy queries: children, ancestors, descendants, trees; deep and wide; bulk import."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hopper_graph import InstanceSpec, LimitExceeded, NotFound, ScopeRuleViolation
from hopper_graph.errors import DuplicateName
from tests.conftest import wipe
from tests.factories import chain_specs, make_global, make_orchestration, make_project


@pytest.fixture
def small_tree(repo):
    """global -> p1 -> (r1 -> r11, r2), p2 -> sub"""
    g = make_global(repo)
    p1, p2 = make_project(repo, g, name="p1"), make_project(repo, g, name="p2")
    r1, r2 = make_orchestration(repo, p1, name="r1"), make_orchestration(repo, p1, name="r2")
    r11 = make_orchestration(repo, r1, name="r11")
    sub = make_project(repo, p2, name="sub")
    return {"g": g, "p1": p1, "p2": p2, "r1": r1, "r2": r2, "r11": r11, "sub": sub}


def ids(instances):
    return [i.id for i in instances]


def test_children_in_creation_order_with_paging(repo, small_tree):
    t = small_tree
    assert ids(repo.get_children(t["g"].id)) == [t["p1"].id, t["p2"].id]
    assert ids(repo.get_children(t["p1"].id)) == [t["r1"].id, t["r2"].id]
    assert repo.get_children(t["r11"].id) == []
    page = repo.children_page(t["p1"].id, offset=1, limit=1)
    assert (ids(page.items), page.total) == ([t["r2"].id], 2)
    with pytest.raises(NotFound):
        repo.get_children(str(uuid.uuid4()))


def test_ancestors_nearest_first(repo, small_tree):
    t = small_tree
    assert ids(repo.get_ancestors(t["r11"].id)) == [t["r1"].id, t["p1"].id, t["g"].id]
    assert repo.get_ancestors(t["g"].id) == []
    with pytest.raises(NotFound):
        repo.get_ancestors(str(uuid.uuid4()))


def test_descendants_level_by_level(repo, small_tree):
    t = small_tree
    assert ids(repo.get_descendants(t["g"].id)) == [
        t["p1"].id, t["p2"].id, t["r1"].id, t["r2"].id, t["sub"].id, t["r11"].id]
    assert ids(repo.get_descendants(t["p1"].id)) == [t["r1"].id, t["r2"].id, t["r11"].id]
    page = repo.descendants_page(t["g"].id, offset=2, limit=2)
    assert (ids(page.items), page.total) == ([t["r1"].id, t["r2"].id], 6)


def test_tree_nested_and_flat_with_max_depth(repo, small_tree):
    t = small_tree
    tree = repo.get_instance_tree(t["g"].id)
    assert tree.instance.id == t["g"].id
    assert [c.instance.name for c in tree.children] == ["p1", "p2"]
    assert [c.instance.name for c in tree.children[0].children] == ["r1", "r2"]
    assert tree.children[0].children[0].children[0].instance.name == "r11"
    shallow = repo.get_instance_tree(t["g"].id, max_depth=1)
    assert [c.children for c in shallow.children] == [[], []]
    flat = repo.get_flat_tree(t["p1"].id)
    assert [(r.instance.name, r.depth) for r in flat] == [("p1", 0), ("r1", 1), ("r2", 1),
                                                          ("r11", 2)]
    assert flat[0].parent_id is None and flat[3].parent_id == t["r1"].id
    assert [r.instance.name for r in repo.get_flat_tree(t["p1"].id, max_depth=0)] == ["p1"]


def test_scope_and_status_queries(repo, small_tree, driver):
    t = small_tree
    assert repo.get_global_instance() == t["g"]
    assert ids(repo.get_project_instances("p1")) == [t["p1"].id]
    assert ids(repo.get_orchestration_instances("p1")) == [t["r1"].id, t["r2"].id, t["r11"].id]
    assert ids(repo.get_project_instances("sub")) == [t["sub"].id]
    assert len(repo.get_instances_by_status("CREATED")) == 7
    driver.execute_query("MATCH (n:HopperInstance {id: $id}) SET n.status = 'ACTIVE'",
                         id=t["g"].id)  # test data: the status writer is the lifecycle
    assert ids(repo.get_active_instances()) == [t["g"].id]


def test_no_global_means_none(repo):
    assert repo.get_global_instance() is None


@pytest.mark.slow
def test_chain_5000_deep(repo, manager):
    """Deeper than the issue's 2,000: at 5,000 a query that sorts var-length rows (each
    holding its path) needs quadratic memory and fails on the test server's 1 GiB heap."""
    g = make_global(repo, limits={"max_depth": 6000})
    specs = chain_specs(5000, g.id)
    repo.bulk_create(specs)
    leaf = specs[-1].id
    ancestors = repo.get_ancestors(leaf)
    assert len(ancestors) == 5000
    assert ancestors[0].id == specs[-2].id and ancestors[-1].id == g.id
    assert [a.depth for a in ancestors] == list(range(4999, -1, -1))
    assert len(repo.get_descendants(g.id)) == 5000
    assert repo.descendants_page(g.id, offset=4990, limit=20).total == 5000
    assert manager.effective_config(leaf).provenance["tags"] == "default"
    assert manager.health_check(g.id, subtree=True).subtree["healthy"] == 5001
    tree = repo.get_instance_tree(g.id)
    depth, node = 0, tree
    while node.children:
        [node] = node.children
        depth += 1
    assert depth == 5000 and node.instance.id == leaf
    manager.start(g.id)
    manager.start(specs[0].id)
    manager.stop(g.id)  # locks and walks the whole chain
    manager.delete(g.id)
    assert repo.find(leaf) is None


@pytest.mark.slow
def test_tree_of_20000(repo):
    g = make_global(repo, limits={"max_child_instances": 1000})
    specs = []
    for p in range(100):
        project = InstanceSpec(id=str(uuid.uuid4()), name=f"p{p}", scope="PROJECT",
                               parent_id=g.id, project_id=f"p{p}",
                               config={"limits": {"max_child_instances": 1000}})
        specs.append(project)
        for r in range(199):
            specs.append(InstanceSpec(id=str(uuid.uuid4()), name=f"p{p}-r{r}",
                                      scope="ORCHESTRATION", parent_id=project.id))
    assert len(repo.bulk_create(specs)) == 20_000
    assert repo.descendants_page(g.id, limit=1).total == 20_000
    flat = repo.get_flat_tree(g.id)
    assert len(flat) == 20_001
    assert sum(1 for r in flat if r.depth == 2) == 19_900
    tree = repo.get_instance_tree(g.id)
    assert len(tree.children) == 100 and all(len(c.children) == 199 for c in tree.children)
    assert repo.children_page(specs[0].id, offset=150, limit=100).total == 199
    assert len(repo.get_history(specs[-1].id)) == 1


def test_bulk_create_validates_everything_and_creates_nothing_on_failure(repo):
    g = make_global(repo)
    p = make_project(repo, g, config={"limits": {"max_child_instances": 2}})
    runs = [InstanceSpec(id=str(uuid.uuid4()), name=f"r{i}", scope="ORCHESTRATION",
                         parent_id=p.id) for i in range(3)]
    with pytest.raises(LimitExceeded) as err:
        repo.bulk_create(runs)
    assert err.value.details["index"] == 2
    assert repo.get_children(p.id) == []
    bad_scope = [InstanceSpec(name="x", scope="PROJECT", parent_id=runs[0].id,
                              project_id="x")]
    with pytest.raises(ScopeRuleViolation) as err:
        repo.bulk_create(bad_scope)
    assert "[0].parent_id" in err.value.errors
    with pytest.raises(DuplicateName):
        repo.bulk_create([InstanceSpec(name="same", scope="PROJECT", parent_id=g.id,
                                       project_id="a"),
                          InstanceSpec(name="same", scope="PROJECT", parent_id=g.id,
                                       project_id="b")])
    with pytest.raises(DuplicateName):  # clashes with the graph: caught by the constraint
        repo.bulk_create([InstanceSpec(name=p.name, scope="PROJECT", parent_id=g.id,
                                       project_id="c")])
    assert repo.list().total == 2


def test_bulk_create_can_import_a_whole_hierarchy_with_its_global(repo):
    g = InstanceSpec(id=str(uuid.uuid4()), name="g", scope="GLOBAL")
    p = InstanceSpec(id=str(uuid.uuid4()), name="p", scope="PROJECT", parent_id=g.id,
                     project_id="p")
    r = InstanceSpec(id=str(uuid.uuid4()), name="r", scope="ORCHESTRATION", parent_id=p.id)
    assert repo.bulk_create([g, p, r], batch_size=2) == [g.id, p.id, r.id]
    assert ids(repo.get_ancestors(r.id)) == [p.id, g.id]
    assert repo.get(r.id).project_id == "p"
    assert [e.event for e in repo.events_since(0)] == ["create"] * 3


# -- property-based: random trees against a plain-Python model -----------------------------
@st.composite
def random_trees(draw):
    """A list of parent indexes: node i's parent is an earlier node (0 is the PROJECT root)."""
    size = draw(st.integers(min_value=1, max_value=40))
    return [None] + [draw(st.integers(min_value=0, max_value=i - 1)) for i in range(1, size)]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parents=random_trees())
def test_hierarchy_queries_match_a_python_model(repo, driver, database, parents):
    wipe(driver, database)
    g = make_global(repo, limits={"max_depth": 100})
    specs = [InstanceSpec(id=str(uuid.uuid4()), name="root", scope="PROJECT", parent_id=g.id,
                          project_id="model")]
    for i, parent in enumerate(parents[1:], start=1):
        specs.append(InstanceSpec(id=str(uuid.uuid4()), name=f"n{i}", scope="ORCHESTRATION",
                                  parent_id=specs[parent].id))
    repo.bulk_create(specs)
    node_ids = [s.id for s in specs]
    children = {i: [j for j, p in enumerate(parents) if p == i] for i in range(len(parents))}

    def ancestors(i):
        out = []
        while parents[i] is not None:
            i = parents[i]
            out.append(node_ids[i])
        return [*out, g.id]

    def descendants(i):
        out, frontier = [], [i]
        while frontier:
            frontier = [c for f in frontier for c in children[f]]
            out.extend(frontier)
        return out

    for i, node in enumerate(node_ids):
        assert ids(repo.get_children(node)) == [node_ids[c] for c in children[i]]
        assert ids(repo.get_ancestors(node)) == ancestors(i)
        assert set(ids(repo.get_descendants(node))) == {node_ids[d] for d in descendants(i)}
    flat = repo.get_flat_tree(node_ids[0])
    assert {(r.instance.id, r.parent_id) for r in flat[1:]} == {
        (node_ids[i], node_ids[p]) for i, p in enumerate(parents) if p is not None}


def test_bulk_created_instances_have_both_timestamps(repo):
    g = make_global(repo)
    [pid] = repo.bulk_create([InstanceSpec(name="p", scope="PROJECT", parent_id=g.id,
                                           project_id="p")])
    p = repo.get(pid)
    assert p.created_at is not None and p.updated_at == p.created_at
