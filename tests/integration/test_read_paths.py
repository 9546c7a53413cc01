"""Reads whose cost follows the answer, not the graph: cursor pages, and the index each
list filter seeks. Costs are checked by PROFILE (db hits of the named query), never by time.
"""

from __future__ import annotations

from typing import Any

import pytest

from hopper_graph import InstanceSpec, LimitExceeded, ScopeRuleViolation, ValidationError, cursors
from hopper_graph.cursors import FIRST
from hopper_graph.queries import QUERIES
from tests.factories import make_global, make_orchestration, make_project


def db_hits(driver, database, query: str, **params: Any) -> int:
    """Db hits of one run of a named query, from PROFILE."""
    _, summary, _ = driver.execute_query(f"PROFILE {getattr(QUERIES, query).text}", params,
                                         database_=database)

    def total(plan: Any) -> int:
        return int(plan.get("dbHits", 0)) + sum(total(c) for c in plan.get("children", []))
    return total(summary.profile)


def walk(fetch) -> list[str]:
    """Every id of a list read page by page by cursor."""
    seen, after = [], FIRST
    while after is not None:
        page = fetch(after)
        seen += [i.id for i in page.items]
        after = page.next
    return seen


def runs(repo, parent, count: int, prefix: str) -> list[str]:
    specs = [InstanceSpec(name=f"{prefix}-{k}", scope="ORCHESTRATION", parent_id=parent.id)
             for k in range(count)]
    return repo.bulk_create(specs)


@pytest.fixture
def two_projects(repo):
    g = make_global(repo, limits={"max_child_instances": 1000})
    small = make_project(repo, g, name="small",
                         config={"limits": {"max_child_instances": 1000}})
    big = make_project(repo, g, name="big", config={"limits": {"max_child_instances": 1000}})
    return g, small, big


def test_cursor_walks_give_what_one_read_gives(repo, two_projects):
    g, small, _ = two_projects
    made = runs(repo, small, 7, "s")
    for run_id in made[:2]:
        repo.bulk_create([InstanceSpec(name=f"{run_id}-phase", scope="ORCHESTRATION",
                                       parent_id=run_id)])
    assert walk(lambda a: repo.children_page(small.id, limit=3, after=a)) == made
    assert walk(lambda a: repo.descendants_page(g.id, limit=2, after=a)) == \
        [i.id for i in repo.get_descendants(g.id)]
    assert walk(lambda a: repo.list(scope="ORCHESTRATION", limit=4, after=a)) == \
        [i.id for i in repo.list(scope="ORCHESTRATION", limit=100).items]
    assert walk(lambda a: repo.list(project_id="small", limit=3, after=a)) == \
        [i.id for i in repo.list(project_id="small", limit=100).items]
    history = [e.id for e in repo.get_history(small.id)]
    assert walk(lambda a: repo.history_page(small.id, limit=1, after=a)) == history


def test_a_cursor_page_has_no_total_and_an_offset_page_has_one(repo, two_projects):
    _, small, _ = two_projects
    runs(repo, small, 3, "s")
    by_offset = repo.list(parent_id=small.id, limit=2)
    by_cursor = repo.list(parent_id=small.id, limit=2, after=FIRST)
    assert (by_offset.total, by_cursor.total) == (3, None)
    assert [i.id for i in by_offset.items] == [i.id for i in by_cursor.items]
    assert by_offset.next == by_cursor.next is not None
    assert repo.list(parent_id=small.id, limit=3, after=FIRST).next is None


def test_a_cursor_of_another_list_or_with_an_offset_is_refused(repo, two_projects):
    _, small, _ = two_projects
    runs(repo, small, 3, "s")
    level = repo.descendants_page(small.id, limit=1, after=FIRST).next
    with pytest.raises(ValidationError) as refused:
        repo.children_page(small.id, limit=1, after=level)
    assert "after" in refused.value.errors
    with pytest.raises(ValidationError) as refused:
        repo.list(offset=1, after=FIRST)
    assert "offset" in refused.value.errors
    for text in ("%%%", "e30", cursors.encode(cursors.CREATED, "yesterday", "x")):
        with pytest.raises(ValidationError):
            repo.list(after=text)


LIST_PARAMS = {"scope": None, "status": None, "parent_id": None, "project_id": None,
               "selector": [],
               "after_at": cursors.EARLIEST, "after_id": "", "skip": 0, "limit": 6,
               "with_total": False}


def list_cases(small) -> list[tuple[str, dict[str, Any]]]:
    return [("list_all", {}), ("list_by_scope", {"scope": "ORCHESTRATION"}),
            ("list_by_status", {"status": "CREATED"}),
            ("list_by_scope_and_status", {"scope": "ORCHESTRATION", "status": "CREATED"}),
            ("list_by_parent", {"parent_id": small.id}),
            ("list_by_project_and_scope", {"project_id": "small", "scope": "ORCHESTRATION"})]


def test_a_list_page_costs_the_same_in_a_graph_ten_times_larger(repo, two_projects, driver,
                                                                database):
    """Each filter's page seeks its index in page order and stops at the page's end: the
    db hits of a page do not grow with the instances it does not return."""
    _, small, big = two_projects
    runs(repo, small, 40, "s")
    before = {name: db_hits(driver, database, name, **{**LIST_PARAMS, **extra})
              for name, extra in list_cases(small)}
    before["get_children"] = db_hits(driver, database, "get_children", parent_id=small.id,
                                     after_at=cursors.EARLIEST, after_id="", skip=0, limit=6)
    runs(repo, big, 400, "b")
    runs(repo, small, 400, "t")  # after the first page of small, in creation order
    after = {name: db_hits(driver, database, name, **{**LIST_PARAMS, **extra})
             for name, extra in list_cases(small)}
    after["get_children"] = db_hits(driver, database, "get_children", parent_id=small.id,
                                    after_at=cursors.EARLIEST, after_id="", skip=0, limit=6)
    for name, hits in before.items():
        assert after[name] <= hits + 4, (name, hits, after[name])


def test_a_deep_page_by_cursor_costs_what_the_first_does(repo, two_projects, driver,
                                                         database):
    _, small, _ = two_projects
    made = runs(repo, small, 300, "s")
    first = repo.children_page(small.id, limit=10, after=FIRST)
    deep_cursor = repo.children_page(small.id, limit=10, offset=280).items[-1]
    params = dict(parent_id=small.id, skip=0, limit=11)
    first_hits = db_hits(driver, database, "get_children", after_at=cursors.EARLIEST,
                         after_id="", **params)
    deep_hits = db_hits(driver, database, "get_children", after_at=deep_cursor.created_at,
                        after_id=deep_cursor.id, **params)
    assert [i.id for i in first.items] == made[:10]
    assert deep_hits <= first_hits + 4, (first_hits, deep_hits)


def test_counting_is_only_done_when_asked(repo, two_projects, driver, database):
    _, small, _ = two_projects
    runs(repo, small, 220, "s")  # the count reads each match once, the page's included
    params = {**LIST_PARAMS, "scope": "ORCHESTRATION"}
    without = db_hits(driver, database, "list_by_scope", **params)
    counted = db_hits(driver, database, "list_by_scope", **{**params, "with_total": True})
    assert counted > without + 200 > 200 > without


def test_a_history_page_by_cursor_reads_its_events_only(manager, driver, database):
    g = make_global(manager, name="g")
    for _ in range(40):
        manager.start(g.id)
        manager.stop(g.id)
    page = manager.history_page(g.id, limit=5, after=FIRST)
    seq = page.items[-1].seq
    params = dict(instance_id=g.id, skip=0, limit=6)
    early = db_hits(driver, database, "get_history", after_seq=0, **params)
    late = db_hits(driver, database, "get_history", after_seq=seq + 60, **params)
    assert late <= early + 4
    assert [e.event for e in page.items] == ["create", "start", "stop", "start", "stop"]


def test_a_tree_cut_at_a_depth_walks_no_deeper(repo, two_projects, driver, database):
    """max_depth prunes the walk itself: cutting at the root costs the same however large
    the tree under it is, and the levels it returns are exactly those asked for."""
    g, small, _ = two_projects
    shallow = db_hits(driver, database, "get_subtree_to_depth", id=g.id, max_depth=0)
    made = runs(repo, small, 300, "s")
    repo.bulk_create([InstanceSpec(name=f"{i}-phase", scope="ORCHESTRATION", parent_id=i)
                      for i in made[:50]])
    assert db_hits(driver, database, "get_subtree_to_depth", id=g.id, max_depth=0) == shallow
    assert [r.depth for r in repo.get_flat_tree(g.id, max_depth=0)] == [0]
    assert {r.depth for r in repo.get_flat_tree(g.id, max_depth=2)} == {0, 1, 2}
    assert len(repo.get_flat_tree(g.id, max_depth=2)) == 3 + 300
    assert len(repo.get_flat_tree(g.id)) == 3 + 300 + 50


def test_a_create_reads_the_children_that_count_not_the_archived_ones(manager, driver,
                                                                      database):
    """The child limit counts the parent's children that are not ARCHIVED, and the SINGLETON
    rule looks for a same-scope sibling, both by index seeks: archived runs piling up under
    a busy project do not make its next create cost more."""
    g = make_global(manager, name="g", limits={"max_child_instances": 5})
    p = make_project(manager, g, name="p", config={"limits": {"max_child_instances": 5}})
    facts = {"parent_id": p.id, "scope": "ORCHESTRATION"}
    for k in range(3):
        manager.create(name=f"open-{k}", scope="ORCHESTRATION", parent_id=p.id)
    before = db_hits(driver, database, "get_parent_for_create", **facts)
    for k in range(60):
        run = manager.create(name=f"old-{k}", scope="ORCHESTRATION", parent_id=p.id)
        manager.archive(run.id)
    assert db_hits(driver, database, "get_parent_for_create", **facts) <= before + 4
    manager.create(name="open-3", scope="ORCHESTRATION", parent_id=p.id)
    manager.create(name="open-4", scope="ORCHESTRATION", parent_id=p.id)
    with pytest.raises(LimitExceeded):  # five that count: the sixth is refused
        manager.create(name="open-5", scope="ORCHESTRATION", parent_id=p.id)
    with pytest.raises(ScopeRuleViolation):  # a SINGLETON beside same-scope siblings
        manager.create(name="solo", scope="PROJECT", parent_id=g.id, project_id="q",
                       instance_type="SINGLETON")


def test_a_lean_tree_is_the_flat_tree_with_fewer_fields(repo, two_projects):
    g, small, big = two_projects
    made = runs(repo, small, 5, "s")
    repo.bulk_create([InstanceSpec(name="deep", scope="ORCHESTRATION", parent_id=made[2])])
    runs(repo, big, 3, "b")
    full = repo.get_flat_tree(g.id)
    lean = repo.get_tree_fields(g.id, ["name", "created_at"])
    assert [(r["instance"]["id"], r["parent_id"], r["depth"]) for r in lean] == \
        [(r.instance.id, r.parent_id, r.depth) for r in full]
    assert [r["instance"] for r in lean] == [
        {"id": r.instance.id, "name": r.instance.name,
         "created_at": r.instance.created_at.isoformat()} for r in full]
    assert len(repo.get_tree_fields(small.id, ["status"], max_depth=1)) == 1 + 5
    leaf = repo.get(made[3])  # a tree of one row; JSON fields decoded, as to_dict gives them
    assert repo.get_tree_fields(leaf.id, ["config", "metadata", "stopped_at"]) == [
        {"instance": {"id": leaf.id, "config": leaf.config, "metadata": leaf.metadata,
                      "stopped_at": None}, "parent_id": None, "depth": 0}]
    with pytest.raises(ValidationError) as refused:
        repo.get_tree_fields(g.id, ["name", "password"])
    assert "fields" in refused.value.errors


def test_a_subtree_reads_every_field_as_reading_each_instance_does(manager):
    """The whole-subtree queries answer '' for null (instance_columns_of_rows): every
    field, null or not, must come back as a single read gives it."""
    g = make_global(manager.repository)
    p = make_project(manager.repository, g)
    runs = [make_orchestration(manager, p, name=f"f-{k}").id for k in range(3)]
    manager.start(g.id)
    manager.start(p.id)
    manager.start(runs[0])
    manager.heartbeat(runs[0])
    manager.start(runs[1])
    manager.stop(runs[1])
    manager.update(runs[2], metadata={"owner": "ops"})
    for tree in (manager.repository.get_flat_tree(g.id),
                 manager.repository.get_flat_tree(g.id, max_depth=5)):
        assert [r.instance.to_dict() for r in tree] == [
            manager.get(r.instance.id).to_dict() for r in tree]
        assert len(tree) == 5 and tree[0].instance.parent_id is None
        assert tree[0].instance.project_id is None


def test_a_subtree_health_check_carries_the_ancestors_once(repo, two_projects, driver,
                                                           database):
    """The root's ancestors' config overrides come on the root's row alone: every other
    row inherits from its parent (carrying them on each row, and copying the chain for
    each instance, cost memory in the square of the depth)."""
    from hopper_graph.manager import InstanceManager

    _, small, _ = two_projects
    parent = small.id
    for k in range(12):
        parent = repo.bulk_create([InstanceSpec(name=f"c{k}", scope="ORCHESTRATION",
                                                parent_id=parent)])[0]
    records, _, _ = driver.execute_query(QUERIES.get_subtree_health_facts.text,
                                         {"id": small.id}, database_=database)
    assert len(records) == 13
    assert [r["above"] is not None for r in records] == [True] + [False] * 12
    report = InstanceManager(driver, database).health_check(small.id, subtree=True)
    assert sum(report.subtree.values()) == 13


def test_pages_keep_only_the_fields_asked_for(manager, driver, database):
    g = make_global(manager, name="g")
    p = make_project(manager, g, name="p")
    page = manager.list(scope="PROJECT", fields=["name", "status"], after=FIRST)
    assert page.items == [{"id": p.id, "name": "p", "status": "CREATED"}]
    assert manager.children_page(g.id, fields=["depth"]).items == [{"id": p.id, "depth": 1}]
    assert manager.descendants_page(g.id, fields=["scope"], after=FIRST).items == [
        {"id": p.id, "scope": "PROJECT"}]
    with pytest.raises(ValidationError) as refused:
        manager.list(fields=["name", "nope"])
    assert "fields" in refused.value.errors
