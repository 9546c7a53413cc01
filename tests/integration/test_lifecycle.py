"""The lifecycle against a real Neo4j: the full table, guards, cascades, hooks, audit."""

from __future__ import annotations

import logging

import pytest

from hopper_graph import (
    ConcurrentModification,
    HookVetoed,
    InstanceRunning,
    InstanceSpec,
    InstanceStatus,
    InvalidTransition,
    NotFound,
    ParentNotActive,
    ValidationError,
)
from hopper_graph.machine import EVENTS
from tests.factories import make_global, make_orchestration, make_project, make_run
from tests.unit.test_machine import EXPECTED

S = InstanceStatus

# How to bring a fresh PERSISTENT instance (under an ACTIVE parent) to each status.
ROUTE = {S.CREATED: [], S.ACTIVE: ["start"], S.PAUSED: ["start", "pause"],
         S.STOPPED: ["start", "stop"], S.ARCHIVED: ["archive"]}


@pytest.fixture
def active_project(manager):
    g = make_global(manager)
    manager.start(g.id)
    return g


def fresh(manager, parent, status, n=[0]):  # noqa: B006 - a counter across calls
    n[0] += 1
    p = manager.create(name=f"p{n[0]}", scope="PROJECT", parent_id=parent.id,
                       project_id=f"p{n[0]}")
    for event in ROUTE[status]:
        manager.transition(p.id, event)
    assert manager.get(p.id).status is status
    return p


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("event", EVENTS)
def test_every_cell_of_the_transition_table(manager, active_project, status, event):
    p = fresh(manager, active_project, status)
    before = manager.get(p.id)
    if (status, event) in EXPECTED:
        result = manager.transition(p.id, event, actor="t", reason="table")
        assert (result.previous_status, result.status) == (status, EXPECTED[status, event])
        after = manager.get(p.id)
        assert after.status is EXPECTED[status, event]
        assert after.version == before.version + 1
        last = manager.history(p.id)[-1]
        assert (last.event, last.from_status, last.to_status, last.actor, last.reason) == (
            event, status, EXPECTED[status, event], "t", "table")
    else:
        with pytest.raises(InvalidTransition) as err:
            manager.transition(p.id, event)
        details = err.value.details
        assert (details["status"], details["event"], details["id"]) == (status, event, p.id)
        assert details["allowed_events"] == [e for e in EVENTS if (status, e) in EXPECTED]
        assert status.value in str(err.value)
        assert manager.get(p.id) == before
        assert len(manager.history(p.id)) == len(ROUTE[status]) + 1


def test_unknown_event_and_unknown_instance(manager, active_project):
    with pytest.raises(ValidationError):
        manager.transition(active_project.id, "explode")
    with pytest.raises(NotFound):
        manager.start("00000000-0000-0000-0000-000000000000")


def test_timestamps(manager, active_project):
    p = fresh(manager, active_project, S.CREATED)
    started = manager.start(p.id).instance
    assert started.started_at is not None and started.stopped_at is None
    stopped = manager.stop(p.id).instance
    assert stopped.stopped_at >= started.started_at
    archived = manager.archive(p.id).instance
    assert archived.archived_at >= stopped.stopped_at
    assert archived.started_at == started.started_at


def test_start_and_resume_need_an_active_parent(manager):
    g = make_global(manager, name="g")
    p = make_project(manager, g, name="p")
    with pytest.raises(ParentNotActive) as err:
        manager.start(p.id)
    assert err.value.details["parent_status"] == "CREATED"
    manager.start(g.id)
    manager.start(p.id)
    run = make_orchestration(manager, p, name="r")
    manager.start(run.id)
    manager.pause(run.id)
    manager.pause(p.id)
    with pytest.raises(ParentNotActive):
        manager.resume(run.id)
    assert manager.get(run.id).status is S.PAUSED


def test_stop_cascades_deepest_first_with_cause(manager, active_project):
    p = fresh(manager, active_project, S.ACTIVE)
    a = manager.create(name="a", scope="ORCHESTRATION", parent_id=p.id,
                       instance_type="PERSISTENT")
    manager.start(a.id)
    b = manager.create(name="b", scope="ORCHESTRATION", parent_id=a.id,
                       instance_type="PERSISTENT")
    manager.start(b.id)
    manager.pause(b.id)
    idle = manager.create(name="idle", scope="ORCHESTRATION", parent_id=p.id,
                          instance_type="PERSISTENT")
    result = manager.stop(p.id, actor="ops")
    assert [(c.id, c.previous_status, c.status) for c in result.cascaded] == [
        (b.id, S.PAUSED, S.STOPPED), (a.id, S.ACTIVE, S.STOPPED)]
    assert all(c.cause == p.id for c in result.cascaded)
    assert manager.get(idle.id).status is S.CREATED
    event = manager.history(b.id)[-1]
    assert (event.event, event.cause, event.actor) == ("stop", p.id, "ops")
    feed = [e for e in manager.events_since(0) if e.event == "stop"]
    assert [e.instance_id for e in feed] == [b.id, a.id, p.id]


def test_pause_cascade_and_resume_restores_only_what_it_paused(manager, active_project):
    p = fresh(manager, active_project, S.ACTIVE)
    by_hand = manager.create(name="hand", scope="ORCHESTRATION", parent_id=p.id,
                             instance_type="PERSISTENT")
    cascaded = manager.create(name="casc", scope="ORCHESTRATION", parent_id=p.id,
                              instance_type="PERSISTENT")
    below = manager.create(name="below", scope="ORCHESTRATION", parent_id=cascaded.id,
                           instance_type="PERSISTENT")
    for i in (by_hand, cascaded, below):
        manager.start(i.id)
    manager.pause(by_hand.id)
    paused = manager.pause(p.id)
    assert {c.id for c in paused.cascaded} == {cascaded.id, below.id}
    resumed = manager.resume(p.id)
    assert [c.id for c in resumed.cascaded] == [cascaded.id, below.id]  # parents first
    assert manager.get(by_hand.id).status is S.PAUSED
    assert manager.get(below.id).status is S.ACTIVE
    assert manager.history(below.id)[-1].cause == p.id


def test_archive_cascades_and_is_refused_while_something_runs(manager, active_project):
    p = fresh(manager, active_project, S.ACTIVE)
    run = manager.create(name="r", scope="ORCHESTRATION", parent_id=p.id,
                         instance_type="PERSISTENT")
    manager.start(run.id)
    manager.pause(p.id)
    manager.stop(p.id)
    manager.start(p.id)
    manager.start(run.id)
    manager.stop(p.id)  # stops run too
    manager.start(p.id)
    manager.start(run.id)
    with pytest.raises(InvalidTransition):
        manager.archive(p.id)  # p is ACTIVE
    q = fresh(manager, active_project, S.CREATED)
    child = manager.create(name="c", scope="ORCHESTRATION", parent_id=q.id,
                           instance_type="PERSISTENT")
    manager.start(q.id)
    manager.start(child.id)
    manager.pause(child.id)
    manager.stop(q.id)
    assert manager.get(child.id).status is S.STOPPED
    result = manager.archive(q.id)
    assert [(c.id, c.status, c.cause) for c in result.cascaded] == [(child.id, S.ARCHIVED, q.id)]


def test_archive_refused_while_a_descendant_runs(manager, active_project, driver):
    p = fresh(manager, active_project, S.STOPPED)
    run = manager.create(name="r", scope="ORCHESTRATION", parent_id=p.id,
                         instance_type="PERSISTENT")
    # An inconsistent graph (a running child under a stopped parent) only arises from
    # outside the library; archive still refuses rather than archiving over it.
    driver.execute_query("MATCH (n:HopperInstance {id: $id}) SET n.status = 'ACTIVE'",
                         id=run.id)
    with pytest.raises(InstanceRunning) as err:
        manager.archive(p.id)
    assert err.value.details["running"] == [run.id]
    assert manager.get(p.id).status is S.STOPPED


def test_nothing_is_created_under_archived(manager, active_project):
    from hopper_graph import ParentArchived

    p = fresh(manager, active_project, S.ARCHIVED)
    with pytest.raises(ParentArchived):
        manager.create(name="late", scope="ORCHESTRATION", parent_id=p.id)


def test_ephemeral_is_archived_right_after_it_stops(manager, active_project):
    p = fresh(manager, active_project, S.ACTIVE)
    run = manager.create(name="run", scope="ORCHESTRATION", parent_id=p.id)
    phase = manager.create(name="phase", scope="ORCHESTRATION", parent_id=run.id)
    manager.start(run.id)
    manager.start(phase.id)
    result = manager.stop(run.id)
    assert result.status is S.STOPPED  # the stop itself
    assert result.instance.status is S.ARCHIVED  # then the auto-archive
    assert [(c.id, c.event, c.status) for c in result.cascaded] == [
        (phase.id, "stop", S.STOPPED), (phase.id, "archive", S.ARCHIVED),
        (run.id, "archive", S.ARCHIVED)]
    assert [e.event for e in manager.history(run.id)] == ["create", "start", "stop", "archive"]
    assert manager.history(run.id)[-1].cause == run.id
    # Stopping the project cascades to an EPHEMERAL run, which is archived too.
    other = manager.create(name="other", scope="ORCHESTRATION", parent_id=p.id)
    manager.start(other.id)
    manager.stop(p.id)
    assert manager.get(other.id).status is S.ARCHIVED
    assert manager.get(p.id).status is S.STOPPED  # PERSISTENT: stays STOPPED


def test_delete_force_stops_first_and_keeps_history(manager, active_project):
    p = fresh(manager, active_project, S.ACTIVE)
    run = manager.create(name="r", scope="ORCHESTRATION", parent_id=p.id)
    manager.start(run.id)
    with pytest.raises(InstanceRunning):
        manager.delete(p.id)
    result = manager.delete(p.id, force=True, actor="ops")
    assert [(c.id, c.event) for c in result.stopped] == [(run.id, "stop"), (p.id, "stop")]
    assert result.deleted == [run.id, p.id]
    assert [e.event for e in manager.history(run.id)] == ["create", "start", "stop", "delete"]
    assert manager.history(run.id)[-2].cause == p.id


def test_expected_version_guards_transitions(manager, active_project):
    p = fresh(manager, active_project, S.CREATED)
    with pytest.raises(ConcurrentModification):
        manager.start(p.id, expected_version=p.version + 5)
    assert manager.get(p.id).status is S.CREATED
    assert manager.start(p.id, expected_version=p.version).status is S.ACTIVE


def test_before_hook_vetoes_and_after_hook_failure_keeps_the_change(manager, active_project,
                                                                   caplog):
    p = fresh(manager, active_project, S.CREATED)
    seen = []

    @manager.hooks.before("on_start")
    def no_starts_on_fridays(ctx):
        raise RuntimeError("frozen")

    with pytest.raises(HookVetoed) as err:
        manager.start(p.id)
    assert "no_starts_on_fridays" in str(err.value)
    assert manager.get(p.id).status is S.CREATED
    assert [e.event for e in manager.history(p.id)] == ["create"]

    manager.hooks._hooks.clear()

    @manager.hooks.after("on_start")
    def broken(ctx):
        seen.append((ctx.hook, ctx.instance_id, ctx.from_status, ctx.to_status))
        raise RuntimeError("after-hook bug")

    with caplog.at_level(logging.ERROR, logger="hopper_graph.lifecycle"):
        manager.start(p.id)
    assert manager.get(p.id).status is S.ACTIVE
    assert seen == [("on_start", p.id, "CREATED", "ACTIVE")]
    assert "broken" in caplog.text


def test_hooks_see_cascades_create_and_delete(manager, active_project):
    p = fresh(manager, active_project, S.ACTIVE)
    calls = []
    for hook in ("on_create", "on_stop", "on_archive", "on_delete"):
        manager.hooks.register(hook, lambda ctx: calls.append((ctx.hook, ctx.cause)))
    run = manager.create(name="r", scope="ORCHESTRATION", parent_id=p.id)
    manager.start(run.id)
    manager.stop(p.id)
    manager.delete(p.id)
    assert calls == [("on_create", None), ("on_stop", p.id), ("on_stop", None),
                     ("on_archive", p.id), ("on_delete", p.id), ("on_delete", None)]

    @manager.hooks.before("on_create")
    def refuse(ctx):
        raise ValueError("quota")

    with pytest.raises(HookVetoed):
        manager.create(name="vetoed", scope="PROJECT", parent_id=active_project.id,
                       project_id="vetoed")
    assert manager.list(scope="PROJECT").total == 0


def test_subscribers_get_committed_events_only(manager, active_project):
    got = []
    unsubscribe = manager.subscribe(got.append)
    p = fresh(manager, active_project, S.CREATED)
    with pytest.raises(InvalidTransition):
        manager.resume(p.id)
    manager.start(p.id)
    unsubscribe()
    manager.stop(p.id)
    assert [(e.instance_id, e.event) for e in got] == [(p.id, "create"), (p.id, "start")]
    assert got[0].seq < got[1].seq


def test_transitions_are_logged(manager, active_project, caplog):
    p = fresh(manager, active_project, S.CREATED)
    with caplog.at_level(logging.INFO, logger="hopper_graph.lifecycle"):
        manager.start(p.id, actor="alice")
    [record] = [r for r in caplog.records if r.name == "hopper_graph.lifecycle"]
    assert (record.instance_id, record.event, record.from_status, record.to_status,
            record.actor) == (p.id, "start", "CREATED", "ACTIVE", "alice")


def test_history_survives_and_is_oldest_first(manager, active_project):
    p = fresh(manager, active_project, S.STOPPED)
    history = manager.history(p.id)
    assert [e.event for e in history] == ["create", "start", "stop"]
    assert [e.seq for e in history] == sorted(e.seq for e in history)
    assert history[0].at <= history[1].at <= history[2].at
    manager.delete(p.id)
    assert [e.event for e in manager.history(p.id)] == ["create", "start", "stop", "delete"]


def test_create_accepts_a_spec(manager):
    g = manager.create(InstanceSpec(name="g", scope="GLOBAL"))
    assert manager.get(g.id) == g


def test_update_with_status_is_one_transaction(manager, active_project):
    p = fresh(manager, active_project, S.CREATED)
    run = manager.create(name="r", scope="ORCHESTRATION", parent_id=p.id)
    # The guard fails (parent CREATED): the rename must not land either.
    with pytest.raises(ParentNotActive):
        manager.update(run.id, name="renamed", status="ACTIVE")
    assert manager.get(run.id) == run
    assert [e.event for e in manager.history(run.id)] == ["create"]
    manager.start(p.id)
    moved = manager.update(run.id, name="renamed", metadata={"k": 1}, status="ACTIVE",
                           reason="go")
    assert (moved.name, moved.status, moved.metadata) == ("renamed", S.ACTIVE, {"k": 1})
    assert [e.event for e in manager.history(run.id)] == ["create", "update", "start"]
    with pytest.raises(InvalidTransition) as err:
        manager.update(run.id, status="ACTIVE")
    assert err.value.details["allowed_events"] == ["pause", "stop"]
    unchanged = manager.update(run.id, name="renamed")
    assert unchanged.version == moved.version  # nothing changed, nothing written


@pytest.mark.parametrize("offset", [0, 5])
def test_the_history_of_an_id_that_never_existed_is_not_found_at_any_offset(manager,
                                                                            offset):
    with pytest.raises(NotFound):
        manager.history("00000000-0000-4000-8000-000000000000", offset=offset)


def test_the_history_of_a_deleted_instance_stays_readable_at_any_offset(manager, project):
    run = make_run(manager, project, "gone")
    manager.delete(run.id)
    assert [e.event for e in manager.history(run.id)] == ["create", "delete"]
    assert manager.history(run.id, offset=5) == []


def test_an_auto_archive_names_the_instance_the_stop_was_sent_to(manager, project):
    run = make_run(manager, project, "run")
    manager.start(run.id)
    manager.stop(project.id)
    archive = [e for e in manager.history(run.id) if e.event == "archive"]
    assert [e.cause for e in archive] == [project.id]
    own = make_run(manager, project, "own")
    manager.start(project.id)
    manager.start(own.id)
    manager.stop(own.id)
    assert [e.cause for e in manager.history(own.id) if e.event == "archive"] == [own.id]


def test_force_delete_stops_descendants_before_the_root(manager, project):
    run = make_run(manager, project, "run")
    manager.start(run.id)
    manager.delete(project.id, force=True)
    stops = [e for i in (project.id, run.id) for e in manager.history(i) if e.event == "stop"]
    by_instance = {e.instance_id: e.seq for e in stops}
    assert by_instance[run.id] < by_instance[project.id]


def test_a_resume_skips_a_paused_descendant_whose_parent_stays_paused(manager, project,
                                                                     driver, database):
    child = make_run(manager, project, "child")
    manager.start(child.id)
    grandchild = make_run(manager, child, "grandchild")
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
    run = make_run(manager, project, "pinned")  # version 1
    manager.update(run.id, metadata={"a": 1})  # 2
    assert manager.update(run.id, name="pinned-2", expected_version={1, 2}).version == 3
    with pytest.raises(ConcurrentModification) as refused:
        manager.transition(run.id, "archive", expected_version=frozenset({7, 5}))
    assert (refused.value.details["version"], refused.value.details["expected_version"]) == \
        (3, [5, 7])
    assert manager.get(run.id).status is S.CREATED
    assert manager.transition(run.id, "archive", expected_version=[3, 4]).status is S.ARCHIVED
