"""Purge against the real Neo4j: retention, pinned and young runs keep their ancestors,
pages and cursors, the race with a PATCH between read and delete, and the index a page
of candidates seeks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hopper_graph import InstanceStatus, NotFound, ValidationError
from hopper_graph.purge import decode_cursor
from hopper_graph.queries import QUERIES
from tests.factories import make_run

S = InstanceStatus


@pytest.mark.parametrize("kind", ["pinned", "young", "persistent"])
def test_purge_keeps_a_purgeable_run_whose_child_is_not_purgeable(manager, project, kind):
    parent = make_run(manager, project, "parent", retention={"archived_ttl_seconds": 0})
    manager.start(parent.id)
    if kind == "persistent":
        child = manager.create(name="child", scope="ORCHESTRATION", parent_id=parent.id,
                               instance_type="PERSISTENT")
    else:
        retention = {"archived_ttl_seconds": 0, "purge_archived": False} if kind == "pinned" \
            else {"archived_ttl_seconds": 3600}
        child = make_run(manager, parent, "child", retention=retention)
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
    parent = make_run(manager, project, "parent", retention={"archived_ttl_seconds": 0})
    manager.start(parent.id)
    child = make_run(manager, parent, "child", retention={"archived_ttl_seconds": 0})
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
    run = make_run(manager, project, "pinned", retention={"purge_archived": False})
    manager.start(run.id)
    manager.stop(run.id)
    report = manager.purge(older_than=timedelta(0))
    assert report.purged == []
    assert [i.reason for i in report.kept] == ["retention.purge_archived is false"]


def test_purge_keeps_a_run_pinned_between_its_read_and_its_delete(manager, project):
    """A PATCH that sets purge_archived false after purge read the run, before it deleted
    it: the delete sees the changed version under the lock and keeps the run. The before
    on_delete hook runs between the two, so the interleaving is exact, not timed."""
    parent = make_run(manager, project, "parent", retention={"archived_ttl_seconds": 0})
    manager.start(parent.id)
    child = make_run(manager, parent, "child", retention={"archived_ttl_seconds": 0})
    other = make_run(manager, project, "other", retention={"archived_ttl_seconds": 0})
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
    run = make_run(manager, parent, name, retention=retention)
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
    parent = make_run(manager, project, "parent", retention={"archived_ttl_seconds": 0})
    manager.start(parent.id)
    child = make_run(manager, parent, "child", retention={"archived_ttl_seconds": 0})
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


def test_purge_archived_respects_retention(manager, project):
    p = project
    keep = manager.create(name="keep", scope="ORCHESTRATION", parent_id=p.id,
                          config={"retention": {"archived_ttl_seconds": 3600}})
    gone = manager.create(name="gone", scope="ORCHESTRATION", parent_id=p.id,
                          config={"retention": {"archived_ttl_seconds": 0}})
    pinned = manager.create(name="pinned", scope="ORCHESTRATION", parent_id=p.id,
                            config={"retention": {"archived_ttl_seconds": 0,
                                                  "purge_archived": False}})
    for run in (keep, gone, pinned):
        manager.start(run.id)
        manager.stop(run.id)
    assert manager.purge_archived() == [gone.id]
    assert manager.repository.find(gone.id) is None
    assert [e.event for e in manager.history(gone.id)][-1] == "delete"
    # older_than replaces the TTL, never purge_archived: false
    assert manager.purge_archived(older_than=timedelta(0)) == [keep.id]
    assert manager.get(pinned.id).status is S.ARCHIVED
    assert manager.get(p.id).status is S.ACTIVE
