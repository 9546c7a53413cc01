"""The write path against the real Neo4j: a hook past its time limit vetoes, a vetoed bulk
import writes nothing, one round trip per simple transition, subscribers see each seq,
read-your-writes by bookmark. Its races (hooks holding nothing up, the feed never skipping
under writers) are in test_races.py."""

from __future__ import annotations

import time

import pytest

from hopper_graph import (
    HookRegistry,
    HookTimedOut,
    HookVetoed,
    InstanceManager,
    InstanceSpec,
    InstanceStatus,
    LimitExceeded,
    ValidationError,
)
from hopper_graph.graph import Graph, following, last_bookmarks
from tests.factories import make_global, make_orchestration, make_two_projects

S = InstanceStatus


def test_a_hook_past_its_time_limit_vetoes_naming_the_hook(clean_graph, database):
    manager = InstanceManager(clean_graph, database, hooks=HookRegistry(timeout=0.2))
    ids = make_two_projects(manager)

    def dawdle(context):
        time.sleep(1.0)

    manager.hooks.register("on_start", dawdle, when="before")
    with pytest.raises(HookTimedOut, match=r"dawdle.*0.2 s") as caught:
        manager.start(ids["a1"])
    assert isinstance(caught.value, HookVetoed)
    assert caught.value.details["hook_function"].endswith("dawdle")
    assert manager.get(ids["a1"]).status is S.CREATED
    assert [e.event for e in manager.history(ids["a1"])] == ["create"]


def test_a_vetoed_bulk_import_writes_nothing(manager):
    g = make_global(manager)

    def refuse(context):
        if context.instance_id == specs[1].id:
            raise RuntimeError("no second project")

    specs = [InstanceSpec(id=f"00000000-0000-4000-8000-00000000000{i}", name=f"p{i}",
                          scope="PROJECT", parent_id=g.id, project_id=f"p{i}")
             for i in range(3)]
    manager.hooks.register("on_create", refuse, when="before")
    with pytest.raises(HookVetoed, match="no second project"):
        manager.bulk_create(specs)
    assert manager.list(scope="PROJECT").total == 0
    seen: list[str] = []
    after = InstanceManager(manager.repository.driver, manager.repository.database)
    after.hooks.register("on_create", lambda c: seen.append(c.instance_id))
    ids = after.bulk_create(specs)
    assert seen == ids == [s.id for s in specs]


def test_a_transition_without_a_subtree_is_one_statement(manager, monkeypatch):
    ids = make_two_projects(manager)
    calls = counted_statements(monkeypatch)
    manager.start(ids["a1"])
    manager.pause(ids["a1"])
    manager.resume(ids["a1"])
    manager.stop(ids["a1"])  # EPHEMERAL: archived in the same statement
    assert calls == ["write_shared"] * 4  # each its own batch of one (group commit)
    assert manager.repository.get(ids["a1"]).status is S.ARCHIVED


def test_subscribers_get_events_with_their_seq(manager):
    got = []
    manager.subscribe(got.append)
    g = make_global(manager)
    manager.start(g.id)
    assert [(e.event, e.instance_id) for e in got] == [("create", g.id), ("start", g.id)]
    assert got[0].seq < got[1].seq
    assert [e.seq for e in manager.events_since(0)] == [e.seq for e in got]


def test_a_write_leaves_a_bookmark_that_a_read_can_follow(manager):
    g = make_global(manager)
    bookmarks = last_bookmarks()
    assert bookmarks and all(isinstance(b, str) for b in bookmarks)
    with following(bookmarks):
        assert manager.get(g.id).id == g.id
    with following(["not-a-bookmark"]), pytest.raises(ValidationError) as caught:
        manager.get(g.id)
    assert "bookmark" in caught.value.errors


# -- a create under a parent the repository knows -------------------------------------------
def counted_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Graph methods called from now on, by name, in order."""
    calls: list[str] = []
    for name in ("read", "write", "read_rows", "write_rows", "write_shared"):
        original = getattr(Graph, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(Graph, name, counting)
    return calls


def test_a_second_create_under_the_same_parent_is_one_statement(manager, project,
                                                                monkeypatch):
    calls = counted_statements(monkeypatch)
    first = make_orchestration(manager, project, name="first")
    assert calls == ["read_rows", "write_rows"]  # the parent's facts, then the create
    calls.clear()
    second = make_orchestration(manager, project, name="second")
    assert calls == ["write_rows"]  # the facts read for the first still hold
    assert (second.depth, second.project_id) == (first.depth, first.project_id) == (2, "proj")
    assert [c.name for c in manager.get_children(project.id)] == ["first", "second"]


def test_a_changed_parent_is_read_again_and_its_rules_judged_on_what_holds_now(
        manager, project):
    """Another process (a second manager: its own repository) changes what the first
    create's rules saw; the next create of this one must see the change."""
    other = InstanceManager(manager.repository.driver, manager.repository.database)
    run = make_orchestration(manager, project, name="run")
    make_orchestration(manager, run, name="step-1")  # run's facts now remembered
    other.update(project.id, config={"limits": {"max_child_instances": 1}})
    with pytest.raises(LimitExceeded) as caught:  # the project's version moved: read again
        make_orchestration(manager, project, name="over")
    assert caught.value.details["value"] == 1
    global_id = manager.get_global_instance().id
    other.update(global_id, config={"limits": {"max_depth": 2}})  # run's version is as was
    with pytest.raises(LimitExceeded) as caught:  # step-2 would be at depth 3
        make_orchestration(manager, run, name="step-2")
    assert caught.value.details == {"limit": "limits.max_depth", "value": 2}
    assert [c.name for c in manager.get_children(run.id)] == ["step-1"]


def test_a_parent_moved_with_its_ancestor_gives_the_new_child_its_new_depth(manager):
    """A move rewrites the depth of the moved subtree, and its versions: the remembered
    facts of a parent in it no longer hold."""
    ids = make_two_projects(manager)
    run = manager.get(ids["a1"])
    make_orchestration(manager, run, name="before")  # run's facts remembered: depth 2
    other = InstanceManager(manager.repository.driver, manager.repository.database)
    other.move(ids["a"], ids["b"])  # a becomes a sub-project of b
    after = make_orchestration(manager, run, name="after")
    assert manager.get(run.id).depth == 3
    assert after.depth == 4
    assert manager.get(after.id).depth == 4


def test_remembered_facts_carry_no_child_count(manager, project):
    """The limit is counted by the write, under the parent's lock: a child archived by
    another process frees its place for the next create at once."""
    other = InstanceManager(manager.repository.driver, manager.repository.database)
    manager.update(project.id, config={"limits": {"max_child_instances": 2}})
    kids = [make_orchestration(manager, project, name=f"kid-{i}") for i in range(2)]
    with pytest.raises(LimitExceeded):
        make_orchestration(manager, project, name="third")
    other.archive(kids[0].id)
    assert make_orchestration(manager, project, name="third").name == "third"
