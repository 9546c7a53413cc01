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
    ValidationError,
)
from hopper_graph.graph import Graph, following, last_bookmarks
from tests.factories import make_global, make_two_projects

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
    calls: list[str] = []
    for name in ("read", "write", "read_rows", "write_rows", "write_shared"):
        original = getattr(Graph, name)

        def counting(self, *args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(Graph, name, counting)
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
