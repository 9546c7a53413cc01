"""Labels on instances and selectors over them, against the real Neo4j."""

from __future__ import annotations

from typing import Any

import pytest

from hopper_graph import InstanceSpec, ValidationError, cursors
from hopper_graph.errors import ConcurrentModification, InvalidSelector
from hopper_graph.queries import QUERIES
from tests.factories import make_global, make_project
from tests.integration.test_read_paths import db_hits, walk


def label_edges(driver, database, instance_id: str) -> list[str]:
    records, _, _ = driver.execute_query(
        "MATCH (:HopperInstance {id: $id})-[r:LABELED]->(l:Label) "
        "RETURN l.key + '=' + l.value AS pair, r.key + '=' + r.value AS on_edge",
        id=instance_id, database_=database)
    assert all(r["pair"] == r["on_edge"] for r in records)
    return sorted(r["pair"] for r in records)


@pytest.fixture
def project(repo):
    g = make_global(repo, limits={"max_child_instances": 1000})
    return make_project(repo, g, name="p", config={"limits": {"max_child_instances": 1000}})


def run(repo, parent, name: str, **labels: str):
    return repo.create(InstanceSpec(name=name, scope="ORCHESTRATION", parent_id=parent.id,
                                    labels=labels))


def test_labels_are_set_on_create_read_back_and_kept_as_edges(repo, project, driver,
                                                                  database):
    made = run(repo, project, "r1", team="infra", tier="")
    assert made.labels == {"team": "infra", "tier": ""}
    assert repo.get(made.id).labels == {"team": "infra", "tier": ""}
    assert repo.get(made.id).to_dict()["labels"] == {"team": "infra", "tier": ""}
    assert label_edges(driver, database, made.id) == ["team=infra", "tier="]
    assert repo.get(project.id).labels == {}


def test_a_bad_label_is_refused_naming_the_key_and_nothing_is_written(repo, project):
    with pytest.raises(ValidationError) as caught:
        repo.create(InstanceSpec(name="bad", scope="ORCHESTRATION", parent_id=project.id,
                                 labels={"ok": "fine", "-bad": "x"}))
    assert list(caught.value.errors) == ["labels.-bad"]
    assert repo.children_page(project.id).items == []


def test_a_patch_merges_removes_with_null_and_audits_the_keys(repo, project, driver,
                                                                 database):
    made = run(repo, project, "r1", team="infra", tier="batch")
    changed = repo.update(made.id, labels={"tier": None, "env": "prod"})
    assert changed.labels == {"env": "prod", "team": "infra"}
    assert changed.version == made.version + 1
    assert label_edges(driver, database, made.id) == ["env=prod", "team=infra"]
    repo.sequence_events()
    update = repo.get_history(made.id)[-1]
    assert update.event == "update"
    assert update.reason == "changed labels (env, tier)"
    same = repo.update(made.id, labels={"team": "infra"})  # nothing changes: no write
    assert same.version == changed.version


def test_bulk_create_writes_labels(repo, project, driver, database):
    [made] = repo.bulk_create([InstanceSpec(name="b", scope="ORCHESTRATION",
                                            parent_id=project.id, labels={"team": "web"})])
    assert repo.get(made).labels == {"team": "web"}
    assert label_edges(driver, database, made) == ["team=web"]


@pytest.fixture
def fleet(repo, project):
    """Six runs in creation order with a mix of labels."""
    specs = [("a", {"team": "infra", "env": "prod"}), ("b", {"team": "web", "env": "prod"}),
             ("c", {"team": "infra", "env": "staging", "legacy": "yes"}),
             ("d", {"team": "infra", "tier": "batch"}), ("e", {}),
             ("f", {"team": "data", "env": "prod"})]
    return {name: run(repo, project, name, **labels).id for name, labels in specs}


@pytest.mark.parametrize("selector, expected", [
    ("team=infra", "acd"), ("team==infra", "acd"), ("team!=infra", "bef"),
    ("env in (prod,staging)", "abcf"), ("env notin (prod)", "cde"), ("legacy", "c"),
    ("!env", "de"), ("team=infra,!legacy", "ad"), ("team in (infra,data),env=prod", "af"),
    ("tier!=batch,team", "abcf"), ("", "abcdef"), ("team=nobody", ""),
])
def test_a_selector_lists_what_kubernetes_would(repo, project, fleet, selector, expected):
    names = {v: k for k, v in fleet.items()}
    page = repo.list(scope="ORCHESTRATION", selector=selector, limit=100)
    assert "".join(names[i.id] for i in page.items) == expected
    by_parent = repo.list(parent_id=project.id, selector=selector, limit=100)
    assert "".join(names[i.id] for i in by_parent.items) == expected
    children = repo.children_page(project.id, selector=selector)
    assert "".join(names[i.id] for i in children.items) == expected
    below = repo.descendants_page(project.id, selector=selector)
    assert "".join(names[i.id] for i in below.items) == expected
    assert below.total == len(expected)


def test_cursor_pages_with_a_selector_walk_every_match_once(repo, project, fleet):
    for selector in ("team in (infra,data)", "env", "!legacy", "team=infra"):
        one_read = [i.id for i in repo.list(scope="ORCHESTRATION", selector=selector,
                                            limit=100).items]
        assert walk(lambda a, s=selector: repo.list(
            scope="ORCHESTRATION", selector=s, limit=1, after=a)) == one_read
        assert walk(lambda a, s=selector: repo.list(
            parent_id=project.id, selector=s, limit=2, after=a)) == one_read
        assert walk(lambda a, s=selector: repo.descendants_page(
            project.id, selector=s, limit=2, after=a)) == one_read
    offset = repo.list(selector="team in (infra,data)", limit=2, offset=1)
    assert offset.total == 4 and len(offset.items) == 2


def test_a_malformed_selector_names_the_position(repo, project):
    with pytest.raises(InvalidSelector) as caught:
        repo.list(selector="team in (a b)")
    assert caught.value.details["position"] == 12


def test_a_label_page_costs_the_page_not_the_labelled_instances(repo, project, driver,
                                                                 database):
    """An `=` or `in` selector seeks the label's edges in page order: a page's db hits do
    not grow from 1,000 to 20,000 instances carrying the label."""
    g = repo.get_global_instance()
    assert g is not None
    params = {"scope": None, "status": None, "parent_id": None, "project_id": None,
              "after_at": cursors.EARLIEST, "after_id": "", "skip": 0,
              "limit": 101, "with_total": False}

    def fill(count: int, start: int) -> None:
        parent = make_project(repo, g, name=f"bulk-{start}",
                              config={"limits": {"max_child_instances": 100_000}})
        repo.bulk_create([InstanceSpec(name=f"run-{k}", scope="ORCHESTRATION",
                                       parent_id=parent.id,
                                       labels={"team": "infra", "env": ["prod", "dev"][k % 2]})
                          for k in range(start, start + count)])

    def hits() -> dict[str, int]:
        return {
            "eq": db_hits(driver, database, "list_by_label", **params, label_key="team",
                          label_values=["infra"],
                          selector=[{"key": "team", "op": "in", "pairs": ["team=infra"]}]),
            "in": db_hits(driver, database, "list_by_label", **params, label_key="env",
                          label_values=["prod", "dev"], selector=[
                              {"key": "env", "op": "in", "pairs": ["env=prod", "env=dev"]}]),
        }

    fill(1000, 0)
    small = hits()
    fill(19_000, 1000)
    large = hits()
    for name, count in small.items():
        assert large[name] <= count + 8, (name, count, large[name])
    # whatever the statistics say: a seek of the pair, never a scan of every LABELED edge
    # (a plan made on other statistics once scanned 27,000 edges for a page of 100)
    _, summary, _ = driver.execute_query(f"EXPLAIN {QUERIES.list_by_label.text}", {
        **params, "label_key": "team", "label_values": ["infra"], "selector": []},
        database_=database)
    assert {"DirectedRelationshipIndexSeek"} <= operators(summary.plan)
    assert not {o for o in operators(summary.plan) if "IndexScan" in o}


def operators(plan: Any) -> set[str]:
    """The operators of a plan, without their ``@neo4j`` suffix."""
    return {plan["operatorType"].split("@")[0]}.union(
        *(operators(child) for child in plan.get("children", [])))


def test_apply_writes_labels_and_a_second_apply_changes_nothing(manager):
    from hopper_graph.apply import CREATED, UNCHANGED, UPDATED, apply_document

    doc = {"instances": [{"name": "g", "scope": "GLOBAL", "children": [
        {"name": "web", "scope": "PROJECT", "project_id": "web",
         "labels": {"team": "web", "tier": "frontend"}}]}]}
    report = apply_document(manager, doc)
    assert [i.action for i in report.items] == [CREATED, CREATED]
    web = manager.get_by_scope_and_name("PROJECT", "web")
    assert web.labels == {"team": "web", "tier": "frontend"}
    assert [i.action for i in apply_document(manager, doc).items] == [UNCHANGED] * 2
    doc["instances"][0]["children"][0]["labels"] = {"tier": None, "env": "prod"}
    report = apply_document(manager, doc)
    assert (report.items[1].action, report.items[1].changed) == (UPDATED, ("labels",))
    assert manager.get(web.id).labels == {"team": "web", "env": "prod"}
    assert [i.name for i in manager.list(selector="env=prod").items] == ["web"]


def test_a_bad_label_in_a_document_names_the_place(manager):
    from hopper_graph.apply import apply_document

    with pytest.raises(ValidationError) as caught:
        apply_document(manager, {"instances": [{"name": "g", "scope": "GLOBAL",
                                                "labels": {"a b": "x"}}]})
    assert list(caught.value.errors) == ["instances[0].labels.a b"]


def test_labels_export_and_import_with_their_edges(repo, project, fleet, driver, database):
    from hopper_graph.transfer import export_graph, import_graph
    from tests.conftest import wipe

    exported = export_graph(driver, database)
    by_id = {i["id"]: i for i in exported["instances"]}
    assert by_id[fleet["a"]]["labels"] == {"env": "prod", "team": "infra"}  # a map
    wipe(driver, database)
    import_graph(driver, exported, database)
    assert repo.get(fleet["c"]).labels == {"env": "staging", "legacy": "yes", "team": "infra"}
    assert label_edges(driver, database, fleet["c"]) == [
        "env=staging", "legacy=yes", "team=infra"]
    assert [i.id for i in repo.list(selector="team=infra", limit=10).items] == [
        fleet["a"], fleet["c"], fleet["d"]]


def test_an_import_refuses_a_bad_label_naming_the_place(repo, project, fleet, driver,
                                                       database):
    from hopper_graph.transfer import export_graph, import_graph
    from tests.conftest import wipe

    exported = export_graph(driver, database)
    exported["instances"][-1]["labels"] = {"bad key": "x"}
    wipe(driver, database)
    with pytest.raises(ValidationError) as caught:
        import_graph(driver, exported, database)
    index = len(exported["instances"]) - 1
    assert f"instances[{index}].labels.bad key" in caught.value.errors


def test_creates_and_patches_racing_on_a_new_label_share_one_label_node(repo, project, driver,
                                                                        database):
    """Twelve creates carrying a label no instance has yet, in two projects (two parent
    locks), and as many PATCHes of one instance, each adding it and a key of its own: every
    create applies, every PATCH that applies keeps its key, one Label node holds the pair,
    and every instance that carries it has its one edge to it."""
    from tests.threads import race

    other = make_project(repo, repo.get_global_instance(), name="q",
                         config={"limits": {"max_child_instances": 1000}})
    patched = run(repo, project, "patched")
    created = race(lambda i: run(repo, (project, other)[i % 2], f"r{i}", fresh="yes"))
    patches = race(lambda i: repo.update(patched.id, labels={"fresh": "yes", f"k{i}": "v"}))
    assert not [o for o in created if isinstance(o, Exception)]
    # a PATCH may give up after its retries (ConcurrentModification), never half-apply
    assert all(isinstance(o, ConcurrentModification) for o in patches
               if isinstance(o, Exception))
    applied = [i for i, o in enumerate(patches) if not isinstance(o, Exception)]
    assert applied
    records, _, _ = driver.execute_query(
        "MATCH (l:Label {key: 'fresh', value: 'yes'}) "
        "RETURN count(l) AS nodes, COUNT { (l)<-[:LABELED]-() } AS edges",
        database_=database)
    assert (records[0]["nodes"], records[0]["edges"]) == (1, len(created) + 1)
    final = repo.get(patched.id)
    assert final.labels == {"fresh": "yes", **{f"k{i}": "v" for i in applied}}
    assert label_edges(driver, database, patched.id) == sorted(
        f"{k}={v}" for k, v in final.labels.items())
    assert len(repo.list(selector="fresh=yes", limit=100).items) == len(created) + 1


def test_the_feed_read_and_followed_keeps_the_events_of_matching_instances(manager):
    g = make_global(manager)
    p = make_project(manager, g, name="p")
    a = manager.create(name="a", scope="ORCHESTRATION", parent_id=p.id,
                       labels={"team": "infra"})
    manager.create(name="b", scope="ORCHESTRATION", parent_id=p.id, labels={"team": "web"})
    manager.update(a.id, metadata={"x": 1})
    expected = [(a.id, "create"), (a.id, "update")]
    page = manager.feed.read(0, selector="team=infra")
    assert [(e.instance_id, e.event) for e in page] == expected
    stream = manager.feed.follow(0, selector="team=infra")
    try:
        followed = [next(stream) for _ in range(2)]
    finally:
        stream.close()
    assert [(e.instance_id, e.event) for e in followed if e] == expected
    kept, after = manager.feed.scan(0, 3, selector="team=infra")  # g, p, a's create
    assert [(e.instance_id, e.event) for e in kept] == expected[:1] and after == 3
