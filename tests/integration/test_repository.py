"""InstanceRepository against a real Neo4j: create rules, reads, updates, deletes."""

from __future__ import annotations

import uuid
from datetime import UTC

import pytest

from hopper_graph import (
    DuplicateName,
    GlobalAlreadyExists,
    HopperScope,
    InstanceRunning,
    InstanceSpec,
    InstanceStatus,
    InstanceType,
    LimitExceeded,
    NotFound,
    ParentArchived,
    ScopeRuleViolation,
    ValidationError,
)
from hopper_graph.errors import ConcurrentModification
from tests.factories import make_global, make_orchestration, make_project, make_run


def test_create_global_sets_defaults_and_audit(repo):
    g = make_global(repo)
    assert g.scope is HopperScope.GLOBAL
    assert g.status is InstanceStatus.CREATED
    assert g.instance_type is InstanceType.SINGLETON
    assert g.parent_id is None and g.project_id is None and g.depth == 0
    assert g.version == 1
    assert g.created_at.tzinfo is not None and g.created_at.utcoffset() == UTC.utcoffset(None)
    assert g.config["routing"]["strategy"] == "intelligent"
    assert str(uuid.UUID(g.id)) == g.id
    [event] = repo.get_history(g.id)
    assert (event.event, event.from_status, event.to_status) == ("create", None, "CREATED")


def test_get_round_trips_config_and_metadata_exactly(repo):
    g = make_global(repo)
    meta = {"owner": "ops", "nested": {"list": [1, 2.5, "x", None, True], "empty": {}},
            "unicode": "zürich ✓"}
    p = make_project(repo, g, metadata=meta, config={"tags": ["a", "b"]})
    again = repo.get(p.id)
    assert again == p
    assert again.metadata == meta
    assert again.config["tags"] == ["a", "b"]


def test_caller_supplied_id_is_kept(repo):
    wanted = str(uuid.uuid4())
    g = repo.create(InstanceSpec(id=wanted, name="g", scope="GLOBAL"))
    assert g.id == wanted


def test_non_uuid_id_is_rejected(repo):
    with pytest.raises(ValidationError) as err:
        repo.create(InstanceSpec(id="not-a-uuid", name="g", scope="GLOBAL"))
    assert "id" in err.value.errors


def test_second_global_is_refused_by_the_database(repo):
    make_global(repo)
    with pytest.raises(GlobalAlreadyExists):
        repo.create(InstanceSpec(name="another", scope="GLOBAL"))
    with pytest.raises(GlobalAlreadyExists):
        repo.create(InstanceSpec(name="global", scope="GLOBAL"))
    assert repo.list(scope="GLOBAL").total == 1


def test_duplicate_name_and_scope_is_refused_but_other_scope_is_fine(repo):
    g = make_global(repo)
    p = make_project(repo, g, name="alpha")
    with pytest.raises(DuplicateName) as err:
        make_project(repo, g, name="alpha", project_id="other")
    assert "name" in err.value.errors
    run = make_orchestration(repo, p, name="alpha")
    assert run.scope is HopperScope.ORCHESTRATION


@pytest.mark.parametrize(("scope", "parent_scope"), [
    ("PROJECT", "ORCHESTRATION"),
    ("ORCHESTRATION", "GLOBAL"),
])
def test_scope_may_not_rank_above_or_skip_its_parent(repo, scope, parent_scope):
    g = make_global(repo)
    p = make_project(repo, g)
    parent = {"GLOBAL": g, "ORCHESTRATION": make_orchestration(repo, p)}[parent_scope]
    before = repo.list().total
    with pytest.raises(ScopeRuleViolation) as err:
        repo.create(InstanceSpec(name="x", scope=scope, parent_id=parent.id, project_id="p"))
    assert "parent_id" in err.value.errors
    assert repo.list().total == before


def test_global_with_parent_and_child_without_parent_are_refused(repo):
    g = make_global(repo)
    with pytest.raises(ScopeRuleViolation) as err:
        repo.create(InstanceSpec(name="g2", scope="GLOBAL", parent_id=g.id))
    assert "parent_id" in err.value.errors
    with pytest.raises(ScopeRuleViolation) as err:
        repo.create(InstanceSpec(name="p", scope="PROJECT", project_id="p"))
    assert "parent_id" in err.value.errors


def test_missing_parent_names_parent_id(repo):
    make_global(repo)
    with pytest.raises(ScopeRuleViolation) as err:
        repo.create(InstanceSpec(name="p", scope="PROJECT", parent_id=str(uuid.uuid4()),
                                 project_id="p"))
    assert err.value.errors["parent_id"] == ["no instance with this id"]


def test_project_requires_project_id_and_orchestration_inherits_it(repo):
    g = make_global(repo)
    with pytest.raises(ScopeRuleViolation) as err:
        repo.create(InstanceSpec(name="p", scope="PROJECT", parent_id=g.id))
    assert "project_id" in err.value.errors
    p = make_project(repo, g, project_id="proj-1")
    sub = make_project(repo, p, project_id="proj-1-sub")
    run = make_orchestration(repo, sub)
    phase = make_orchestration(repo, run)
    assert (run.project_id, phase.project_id) == ("proj-1-sub", "proj-1-sub")
    with pytest.raises(ScopeRuleViolation):
        make_orchestration(repo, p, project_id="someone-else")


def test_global_refuses_project_id_and_non_singleton_type(repo):
    with pytest.raises(ScopeRuleViolation) as err:
        repo.create(InstanceSpec(name="g", scope="GLOBAL", project_id="p",
                                 instance_type="PERSISTENT"))
    assert set(err.value.errors) == {"project_id", "instance_type"}


def test_unknown_scope_and_type_and_bad_name_are_validation_errors(repo):
    with pytest.raises(ValidationError) as err:
        repo.create(InstanceSpec(name="x", scope="WORLD"))
    assert "scope" in err.value.errors
    g = make_global(repo)
    with pytest.raises(ValidationError) as err:
        repo.create(InstanceSpec(name="x", scope="PROJECT", parent_id=g.id, project_id="p",
                                 instance_type="FOREVER"))
    assert "instance_type" in err.value.errors
    for bad in ["", "   ", "x" * 256]:
        with pytest.raises(ValidationError) as err:
            repo.create(InstanceSpec(name=bad, scope="PROJECT", parent_id=g.id, project_id="p"))
        assert "name" in err.value.errors
    assert repo.list().total == 1


def test_default_types_per_scope(repo):
    g = make_global(repo)
    p = make_project(repo, g)
    run = make_orchestration(repo, p)
    assert (p.instance_type, run.instance_type) == (InstanceType.PERSISTENT,
                                                    InstanceType.EPHEMERAL)


def test_singleton_forbids_same_scope_sibling(repo):
    g = make_global(repo)
    p = make_project(repo, g)
    make_orchestration(repo, p, instance_type="SINGLETON")
    with pytest.raises(ScopeRuleViolation) as err:
        make_orchestration(repo, p)
    assert "instance_type" in err.value.errors
    other = make_project(repo, g)
    make_orchestration(repo, other)
    with pytest.raises(ScopeRuleViolation):
        make_orchestration(repo, other, instance_type="SINGLETON")
    # A different scope beside a SINGLETON is not a same-scope sibling.
    make_project(repo, p, project_id="sub")


def test_child_limit_comes_from_parent_config(repo):
    g = make_global(repo)
    p = make_project(repo, g, config={"limits": {"max_child_instances": 2}})
    make_orchestration(repo, p)
    make_orchestration(repo, p)
    with pytest.raises(LimitExceeded) as err:
        make_orchestration(repo, p)
    assert err.value.details["limit"] == "limits.max_child_instances"
    assert len(repo.get_children(p.id)) == 2


def test_depth_limit_comes_from_global_config(repo):
    g = make_global(repo, limits={"max_depth": 3})
    p = make_project(repo, g)            # depth 1
    run = make_orchestration(repo, p)    # depth 2
    leaf = make_orchestration(repo, run)  # depth 3
    assert leaf.depth == 3
    with pytest.raises(LimitExceeded) as err:
        make_orchestration(repo, leaf)
    assert err.value.details["limit"] == "limits.max_depth"


def test_nothing_is_created_under_an_archived_parent(repo, driver):
    g = make_global(repo)
    p = make_project(repo, g)
    # Test data only: the lifecycle manager is the one writer of status in the library.
    driver.execute_query("MATCH (n:HopperInstance {id: $id}) SET n.status = 'ARCHIVED'",
                         id=p.id)
    with pytest.raises(ParentArchived):
        make_orchestration(repo, p)


def test_get_and_get_by_scope_and_name(repo):
    g = make_global(repo)
    p = make_project(repo, g, name="alpha")
    assert repo.get_by_scope_and_name("PROJECT", "alpha") == p
    assert repo.get_by_scope_and_name(HopperScope.GLOBAL, "global") == g
    with pytest.raises(NotFound):
        repo.get_by_scope_and_name("ORCHESTRATION", "alpha")
    with pytest.raises(NotFound):
        repo.get(str(uuid.uuid4()))
    assert repo.find(str(uuid.uuid4())) is None


def test_list_filters_and_stable_pagination(repo):
    g = make_global(repo)
    a = make_project(repo, g, project_id="a")
    b = make_project(repo, g, project_id="b")
    runs = [make_orchestration(repo, a) for _ in range(5)]
    make_orchestration(repo, b)
    assert repo.list(scope="ORCHESTRATION").total == 6
    assert [i.id for i in repo.list(project_id="a", scope="ORCHESTRATION").items] == \
        [r.id for r in runs]
    assert repo.list(parent_id=g.id).total == 2
    assert repo.list(status="CREATED").total == 9
    assert repo.list(status="ACTIVE").total == 0
    pages = [repo.list(scope="ORCHESTRATION", project_id="a", offset=o, limit=2)
             for o in (0, 2, 4)]
    assert [i.id for page in pages for i in page.items] == [r.id for r in runs]
    assert all(page.total == 5 for page in pages)
    with pytest.raises(ValidationError) as err:
        repo.list(status="RUNNING")
    assert "status" in err.value.errors
    with pytest.raises(ValidationError):
        repo.list(limit=0)


def test_update_name_metadata_and_config_merge_and_replace(repo):
    g = make_global(repo)
    p = make_project(repo, g, metadata={"a": 1, "b": {"c": 2}},
                     config={"tags": ["x"], "limits": {"max_child_instances": 5}})
    updated = repo.update(p.id, name="renamed", metadata={"b": {"d": 3}, "a": None},
                          config={"limits": {"max_child_instances": 7}})
    assert updated.name == "renamed"
    assert updated.metadata == {"b": {"c": 2, "d": 3}}
    assert updated.config["limits"]["max_child_instances"] == 7
    assert updated.config["tags"] == ["x"]
    assert updated.version == p.version + 1
    replaced = repo.update(p.id, config={"tags": ["y"]}, metadata={"z": 1}, replace=True)
    assert replaced.config["tags"] == ["y"]
    assert replaced.config["limits"]["max_child_instances"] != 7  # back to the default
    assert replaced.metadata == {"z": 1}
    assert [e.event for e in repo.get_history(p.id)] == ["create", "update", "update"]


def test_update_is_optimistic_on_version_and_invalid_config_changes_nothing(repo):
    g = make_global(repo)
    p = make_project(repo, g)
    with pytest.raises(ConcurrentModification) as err:
        repo.update(p.id, name="late", expected_version=p.version + 1)
    assert err.value.details["version"] == p.version
    with pytest.raises(ValidationError) as err:
        repo.update(p.id, config={"limits": {"max_child_instances": -1}})
    assert any(k.endswith("limits.max_child_instances") for k in err.value.errors)
    assert repo.get(p.id) == p
    make_project(repo, g, name="taken")
    with pytest.raises(DuplicateName):
        repo.update(p.id, name="taken")
    assert repo.get(p.id) == p


def test_delete_removes_subtree_and_keeps_history(repo, driver):
    g = make_global(repo)
    p = make_project(repo, g)
    run = make_orchestration(repo, p)
    phase = make_orchestration(repo, run)
    keep = make_project(repo, g)
    deleted = repo.delete(p.id, actor="tester")
    assert deleted == [phase.id, run.id, p.id]  # deepest first
    for gone in (p, run, phase):
        assert repo.find(gone.id) is None
        history = repo.get_history(gone.id)
        assert [e.event for e in history] == ["create", "delete"]
        assert history[-1].actor == "tester"
    assert repo.get_history(run.id)[-1].cause == p.id
    assert repo.get_history(p.id)[-1].cause is None
    assert repo.find(keep.id) is not None
    with pytest.raises(NotFound):
        repo.delete(p.id)


def test_delete_is_refused_while_something_runs(repo, driver):
    g = make_global(repo)
    p = make_project(repo, g)
    run = make_orchestration(repo, p)
    driver.execute_query("MATCH (n:HopperInstance {id: $id}) SET n.status = 'ACTIVE'",
                         id=run.id)
    with pytest.raises(InstanceRunning) as err:
        repo.delete(p.id)
    assert err.value.details["running"] == [run.id]
    assert repo.find(p.id) is not None and repo.find(run.id) is not None


def test_events_feed_is_ordered_and_resumable(repo):
    g = make_global(repo)
    p = make_project(repo, g)
    make_orchestration(repo, p)
    events = repo.events_since(0)
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert len(events) == 3
    rest = repo.events_since(events[0].seq, limit=10)
    assert [e.id for e in rest] == [e.id for e in events[1:]]


def test_model_helpers_delegate_to_the_repository(repo):
    g = make_global(repo)
    p = make_project(repo, g)
    run = make_orchestration(repo, p)
    assert [a.id for a in run.get_ancestors()] == [p.id, g.id]
    assert [d.id for d in g.get_descendants()] == [p.id, run.id]


@pytest.mark.parametrize("bad", [{"n": float("nan")}, {"big": 2**70}, {"i": float("inf")},
                                 {"s": {1, 2}}])
def test_metadata_must_round_trip_exactly(repo, bad):
    g = make_global(repo)
    with pytest.raises(ValidationError) as err:
        make_project(repo, g, metadata=bad)
    assert "metadata" in err.value.errors
    assert repo.list(scope="PROJECT").total == 0


def test_hostile_values_are_refused_before_anything_is_written(repo):
    g = make_global(repo)
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    for spec in [
        InstanceSpec(name="bad\ud800name", scope="PROJECT", parent_id=g.id, project_id="p"),
        InstanceSpec(name="p", scope="PROJECT", parent_id=g.id, project_id="bad\udfff"),
        InstanceSpec(name="p", scope="PROJECT", parent_id=g.id, project_id="p", metadata=deep),
        InstanceSpec(name="p", scope="PROJECT", parent_id=g.id, project_id="p", config=deep),
    ]:
        with pytest.raises(ValidationError) as err:
            repo.create(spec)
        assert set(err.value.errors) & {"name", "project_id", "metadata", "config"}
    with pytest.raises(ValidationError):
        repo.list(offset=2**40)
    with pytest.raises(ValidationError):
        repo.events_since(after=10**20)
    with pytest.raises(ValidationError):
        repo.get_flat_tree(g.id, max_depth=10**20)
    assert repo.list().total == 1


def test_a_taken_id_is_a_conflict_naming_id(repo):
    from hopper_graph import Conflict

    g = make_global(repo)
    with pytest.raises(Conflict) as err:
        repo.create(InstanceSpec(id=g.id, name="p", scope="PROJECT", parent_id=g.id,
                                 project_id="p"))
    assert "id" in err.value.errors


# -- the child limit counts what is not ARCHIVED --------------------------------------------
def _full_of_archived_runs(manager, project):
    """A running PROJECT whose limit of 2 children is taken by 2 archived runs."""
    parent = manager.create(name="small", scope="PROJECT", parent_id=project.id,
                            project_id="proj", config={"limits": {"max_child_instances": 2}})
    manager.start(parent.id)
    for i in range(2):
        run = make_run(manager, parent, f"run-{i}")
        manager.start(run.id)
        manager.stop(run.id)  # EPHEMERAL: archived
    return parent


def test_archived_children_do_not_count_toward_the_limit(manager, project):
    parent = _full_of_archived_runs(manager, project)
    third = make_run(manager, parent, "run-2")
    make_run(manager, parent, "run-3")
    with pytest.raises(LimitExceeded, match="2 children that are not ARCHIVED"):
        make_run(manager, parent, "run-4")
    assert manager.get(third.id).status is InstanceStatus.CREATED


def test_archived_children_leave_a_full_parent_healthy_on_headroom(manager, project):
    parent = _full_of_archived_runs(manager, project)
    for subtree in (False, True):
        report = manager.health_check(parent.id, subtree=subtree)
        headroom = {c.name: c for c in report.checks}["child_headroom"]
        assert (headroom.status, headroom.detail) == ("pass", "0 of 2 children")


def test_a_name_that_reads_like_a_label_is_still_a_duplicate_name(manager, project):
    manager.create(name="GlobalInstance `scope` = 'GLOBAL'", scope="ORCHESTRATION",
                   parent_id=project.id)
    with pytest.raises(DuplicateName):
        manager.create(name="GlobalInstance `scope` = 'GLOBAL'", scope="ORCHESTRATION",
                       parent_id=project.id)


def test_a_project_id_too_long_to_index_is_a_validation_error(manager, project):
    with pytest.raises(ValidationError) as caught:
        manager.create(name="long", scope="PROJECT", parent_id=project.id,
                       project_id="x" * 20_000)
    assert "project_id" in caught.value.errors
