"""The rule breaks a review of main reproduced (issue 11), each against the real Neo4j."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from hopper_graph import (
    ConcurrentModification,
    DuplicateName,
    DuplicateProject,
    InstanceStatus,
    LimitExceeded,
    NotFound,
    ScopeRuleViolation,
    ValidationError,
)
from hopper_graph.purge import decode_cursor
from hopper_graph.queries import QUERIES

S = InstanceStatus


@pytest.fixture
def project(manager):
    g = manager.create(name="global", scope="GLOBAL")
    manager.start(g.id)
    p = manager.create(name="project", scope="PROJECT", parent_id=g.id, project_id="proj")
    manager.start(p.id)
    return p


def _run(manager, parent, name, **config):
    return manager.create(name=name, scope="ORCHESTRATION", parent_id=parent.id,
                          config=config or None)


# -- purge --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["pinned", "young", "persistent"])
def test_purge_keeps_a_purgeable_run_whose_child_is_not_purgeable(manager, project, kind):
    parent = _run(manager, project, "parent", retention={"archived_ttl_seconds": 0})
    manager.start(parent.id)
    if kind == "persistent":
        child = manager.create(name="child", scope="ORCHESTRATION", parent_id=parent.id,
                               instance_type="PERSISTENT")
    else:
        retention = {"archived_ttl_seconds": 0, "purge_archived": False} if kind == "pinned" \
            else {"archived_ttl_seconds": 3600}
        child = _run(manager, parent, "child", retention=retention)
    manager.start(child.id)
    manager.stop(parent.id)  # the stop archives the EPHEMERAL parent (and an EPHEMERAL child)
    assert manager.get(parent.id).status is S.ARCHIVED
    assert manager.get(child.id).status is S.ARCHIVED  # archived with the EPHEMERAL above

    dry = manager.purge(dry_run=True)
    report = manager.purge()
    for result in (dry, report):
        assert result.purged == []
        kept = {item.id: item.reason for item in result.kept}
        assert child.id in kept[parent.id]
    assert manager.get(parent.id) and manager.get(child.id)


def test_purge_deletes_a_whole_purgeable_subtree_and_says_why(manager, project):
    parent = _run(manager, project, "parent", retention={"archived_ttl_seconds": 0})
    manager.start(parent.id)
    child = _run(manager, parent, "child", retention={"archived_ttl_seconds": 0})
    manager.start(child.id)
    manager.stop(parent.id)
    dry = manager.purge(dry_run=True)
    assert {i.id for i in dry.purged} == {parent.id, child.id}
    assert manager.get(child.id)  # a dry run deletes nothing
    report = manager.purge()
    assert {i.id for i in report.purged} == {parent.id, child.id}
    assert all("past its retention of 0 s" in i.reason for i in report.purged)
    with pytest.raises(NotFound):
        manager.get(parent.id)
    assert manager.history(child.id)[-1].event == "delete"


def test_purge_with_older_than_never_overrides_purge_archived_false(manager, project):
    run = _run(manager, project, "pinned", retention={"purge_archived": False})
    manager.start(run.id)
    manager.stop(run.id)
    report = manager.purge(older_than=timedelta(0))
    assert report.purged == []
    assert [i.reason for i in report.kept] == ["retention.purge_archived is false"]


def test_purge_keeps_a_run_pinned_between_its_read_and_its_delete(manager, project):
    """A PATCH that sets purge_archived false after purge read the run, before it deleted
    it: the delete sees the changed version under the lock and keeps the run. The before
    on_delete hook runs between the two, so the interleaving is exact, not timed."""
    parent = _run(manager, project, "parent", retention={"archived_ttl_seconds": 0})
    manager.start(parent.id)
    child = _run(manager, parent, "child", retention={"archived_ttl_seconds": 0})
    other = _run(manager, project, "other", retention={"archived_ttl_seconds": 0})
    for run in (child, other):
        manager.start(run.id)
    manager.stop(parent.id)
    manager.stop(other.id)
    pinned: list[str] = []

    def pin(context):
        if not pinned:  # once: the hook runs for every subtree about to go
            pinned.append(child.id)
            manager.update(child.id, config={"retention": {"purge_archived": False}})

    manager.hooks.register("on_delete", pin, when="before")
    report = manager.purge()
    assert [i.id for i in report.purged] == [other.id]
    kept = {i.id: i.reason for i in report.kept}
    assert set(kept) == {parent.id, child.id}
    assert f"changed since purge read it: {child.id} is at version" in kept[child.id]
    assert kept[parent.id] == kept[child.id]
    assert manager.get(child.id).config["retention"]["purge_archived"] is False
    assert manager.get(parent.id).status is S.ARCHIVED
    again = manager.purge()  # read afresh, the child is pinned now: it keeps its parent
    assert again.purged == []
    assert "retention.purge_archived is false" in {i.id: i.reason for i in again.kept}[child.id]


def _archived(manager, parent, name, **retention):
    run = _run(manager, parent, name, retention=retention)
    manager.start(run.id)
    manager.stop(run.id)  # EPHEMERAL: archived as it stops
    return run


def test_purge_pages_on_past_kept_runs_and_says_when_it_stopped_at_its_limit(manager,
                                                                           project):
    """Four pinned runs archived first, then two purgeable ones: a run that examines three
    says there are more and where to go on; going on from there reaches the purgeable ones.
    Pages of two follow each other within a run instead of reading the archive again."""
    pinned = [_archived(manager, project, f"pinned-{i}", purge_archived=False)
              for i in range(4)]
    gone = [_archived(manager, project, f"gone-{i}", archived_ttl_seconds=0)
            for i in range(2)]
    whole = manager.purge(dry_run=True, limit=6, batch=2)
    assert [i.id for i in whole.purged] == [r.id for r in gone]
    assert [i.id for i in whole.kept] == [r.id for r in pinned]
    assert (whole.more, whole.cursor) == (False, None)

    first = manager.purge(limit=3, batch=2)
    assert first.purged == [] and [i.id for i in first.kept] == [r.id for r in pinned[:3]]
    assert first.more is True and first.cursor
    assert manager.purge(limit=3, batch=2).purged == []  # from the start: the same three
    rest = manager.purge(limit=3, batch=2, after=first.cursor)
    assert [i.id for i in rest.purged] == [r.id for r in gone]
    assert [i.id for i in rest.kept] == [pinned[3].id]
    assert (rest.more, rest.cursor) == (False, None)
    with pytest.raises(ValidationError) as caught:
        manager.purge(after="not-a-cursor")
    assert "after" in caught.value.errors


def test_a_subtree_archived_at_once_is_purged_whole_across_pages_of_one(manager, project):
    """Within one archived_at, deeper instances come first: the child's page precedes its
    parent's, so the parent's verdict sees the child's."""
    parent = _run(manager, project, "parent", retention={"archived_ttl_seconds": 0})
    manager.start(parent.id)
    child = _run(manager, parent, "child", retention={"archived_ttl_seconds": 0})
    manager.start(child.id)
    manager.stop(parent.id)
    assert manager.get(child.id).archived_at == manager.get(parent.id).archived_at
    report = manager.purge(batch=1)
    assert [i.id for i in report.purged] == [child.id, parent.id] and report.kept == []


def _operators(plan):
    yield plan
    for child in plan.get("children", ()):
        yield from _operators(child)


def test_a_page_of_purge_candidates_reads_the_page_not_the_archive(clean_graph, database):
    """500 archived runs: a page of 4, from the start or after a cursor, seeks the
    (instance_type, archived_at) index in its order and stops after a few rows, where a
    sort would read all 500."""
    clean_graph.execute_query(
        "UNWIND range(1, 500) AS i CREATE (:HopperInstance {id: 'run-' + i, depth: 2, "
        "instance_type: 'EPHEMERAL', status: 'ARCHIVED', version: 3, config: '{}', "
        "archived_at: datetime('2026-01-01T00:00:00Z') + duration({seconds: i})})",
        database_=database)
    clean_graph.execute_query("CALL db.clearQueryCaches()", database_=database)  # plan anew
    middle = {"after_at": "2026-01-01T00:04:10Z", "after_depth": 2, "after_id": "run-250"}
    for position, first in ((decode_cursor(None), 1), (middle, 251)):
        with clean_graph.session(database=database) as session:
            result = session.run("PROFILE " + QUERIES.find_purge_candidates.text,
                                 position, limit=4)
            ids = [r["id"] for r in result]
            plan = result.consume().profile
        assert ids == [f"run-{i}" for i in range(first, first + 4)]
        [seek] = [o for o in _operators(plan) if o["operatorType"].startswith("NodeIndex")]
        assert seek["operatorType"].startswith("NodeIndexSeek")
        assert "(instance_type, archived_at)" in seek["args"]["Details"]
        assert seek["rows"] < 20, seek["rows"]


# -- limits -------------------------------------------------------------------------------
def _full_of_archived_runs(manager, project):
    """A running PROJECT whose limit of 2 children is taken by 2 archived runs."""
    parent = manager.create(name="small", scope="PROJECT", parent_id=project.id,
                            project_id="proj", config={"limits": {"max_child_instances": 2}})
    manager.start(parent.id)
    for i in range(2):
        run = _run(manager, parent, f"run-{i}")
        manager.start(run.id)
        manager.stop(run.id)  # EPHEMERAL: archived
    return parent


def test_archived_children_do_not_count_toward_the_limit(manager, project):
    parent = _full_of_archived_runs(manager, project)
    third = _run(manager, parent, "run-2")
    _run(manager, parent, "run-3")
    with pytest.raises(LimitExceeded, match="2 children that are not ARCHIVED"):
        _run(manager, parent, "run-4")
    assert manager.get(third.id).status is S.CREATED


def test_archived_children_leave_a_full_parent_healthy_on_headroom(manager, project):
    parent = _full_of_archived_runs(manager, project)
    for subtree in (False, True):
        report = manager.health_check(parent.id, subtree=subtree)
        headroom = {c.name: c for c in report.checks}["child_headroom"]
        assert (headroom.status, headroom.detail) == ("pass", "0 of 2 children")


# -- errors -------------------------------------------------------------------------------
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


@pytest.mark.parametrize("offset", [0, 5])
def test_the_history_of_an_id_that_never_existed_is_not_found_at_any_offset(manager,
                                                                            offset):
    with pytest.raises(NotFound):
        manager.history("00000000-0000-4000-8000-000000000000", offset=offset)


def test_the_history_of_a_deleted_instance_stays_readable_at_any_offset(manager, project):
    run = _run(manager, project, "gone")
    manager.delete(run.id)
    assert [e.event for e in manager.history(run.id)] == ["create", "delete"]
    assert manager.history(run.id, offset=5) == []


# -- one PROJECT per project --------------------------------------------------------------
def test_one_top_level_project_per_project_id_even_when_creates_race(manager, project):
    g = manager.get_global_instance()
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def create(i: int) -> None:
        barrier.wait()
        try:
            manager.create(name=f"twin-{i}", scope="PROJECT", parent_id=g.id,
                           project_id="twin")
            outcomes.append("created")
        except DuplicateProject as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] + ["duplicate-project"] * 5
    with pytest.raises(DuplicateProject) as caught:  # the fixture's own project too
        manager.create(name="again", scope="PROJECT", parent_id=g.id, project_id="proj")
    assert caught.value.details == {"project_id": "proj", "existing_id": project.id}
    assert project.id in caught.value.message
    # a sub-project belongs to its project and may carry its id
    manager.create(name="sub", scope="PROJECT", parent_id=project.id, project_id="proj")


# -- cascades -----------------------------------------------------------------------------
def test_an_auto_archive_names_the_instance_the_stop_was_sent_to(manager, project):
    run = _run(manager, project, "run")
    manager.start(run.id)
    manager.stop(project.id)
    archive = [e for e in manager.history(run.id) if e.event == "archive"]
    assert [e.cause for e in archive] == [project.id]
    own = _run(manager, project, "own")
    manager.start(project.id)
    manager.start(own.id)
    manager.stop(own.id)
    assert [e.cause for e in manager.history(own.id) if e.event == "archive"] == [own.id]


def test_force_delete_stops_descendants_before_the_root(manager, project):
    run = _run(manager, project, "run")
    manager.start(run.id)
    manager.delete(project.id, force=True)
    stops = [e for i in (project.id, run.id) for e in manager.history(i) if e.event == "stop"]
    by_instance = {e.instance_id: e.seq for e in stops}
    assert by_instance[run.id] < by_instance[project.id]


def test_a_resume_skips_a_paused_descendant_whose_parent_stays_paused(manager, project,
                                                                     driver, database):
    child = _run(manager, project, "child")
    manager.start(child.id)
    grandchild = _run(manager, child, "grandchild")
    manager.start(grandchild.id)
    manager.pause(project.id)  # both below are paused by the project's pause
    # The child is now treated as paused by hand (as if it had been before the cascade):
    # the project's resume leaves it PAUSED, so its own child cannot resume under it.
    driver.execute_query("MATCH (n:HopperInstance {id: $id}) REMOVE n.paused_by",
                         id=child.id, database_=database)
    result = manager.resume(project.id)
    assert result.cascaded == []
    assert manager.get(child.id).status is S.PAUSED
    assert manager.get(grandchild.id).status is S.PAUSED


def test_a_write_pinned_to_several_versions_applies_at_any_of_them(manager, project):
    """The library takes the versions an If-Match list names and checks them in the write:
    a transition or update at any listed version applies, at none is refused unchanged."""
    run = _run(manager, project, "pinned")  # version 1
    manager.update(run.id, metadata={"a": 1})  # 2
    assert manager.update(run.id, name="pinned-2", expected_version={1, 2}).version == 3
    with pytest.raises(ConcurrentModification) as refused:
        manager.transition(run.id, "archive", expected_version=frozenset({7, 5}))
    assert (refused.value.details["version"], refused.value.details["expected_version"]) == \
        (3, [5, 7])
    assert manager.get(run.id).status is S.CREATED
    assert manager.transition(run.id, "archive", expected_version=[3, 4]).status is S.ARCHIVED


def test_a_parent_deleted_while_a_create_reads_it_is_a_missing_parent(manager, project,
                                                                       monkeypatch):
    """Read-committed: a node deleted as a statement reads it comes back with no properties
    (a race test once met it as a 500, KeyError 'config'). The parent is deleted for real
    and the read answers as the server did then; the create must say the parent is gone."""
    repository = manager.repository
    real_row = repository.row

    def row_as_in_the_race(text, **params):
        found = real_row(text, **params)
        if text == QUERIES.get_parent_for_create.text and found is not None:
            manager.delete(project.id, force=True)
            found = {**found, "parent": {}}
        return found

    monkeypatch.setattr(repository, "row", row_as_in_the_race)
    with pytest.raises(ScopeRuleViolation) as caught:
        manager.create(name="late", scope="ORCHESTRATION", parent_id=project.id)
    assert caught.value.errors == {"parent_id": ["no instance with this id"]}
