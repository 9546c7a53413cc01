"""The write path with real threads against the real Neo4j: writers in different parts of
the tree run side by side, hooks hold nothing up, the feed never skips, one round trip per
simple transition, read-your-writes by bookmark."""

from __future__ import annotations

import threading
import time

import pytest

from hopper_graph import (
    HookRegistry,
    HookTimedOut,
    HookVetoed,
    InstanceManager,
    InstanceSpec,
    InstanceStatus,
    InvalidTransition,
    ValidationError,
)
from hopper_graph.graph import Graph, following, last_bookmarks

S = InstanceStatus
HOOK_SECONDS = 3.0


def _tree(manager: InstanceManager) -> dict[str, str]:
    """A GLOBAL with two PROJECTs, each with an ACTIVE run; returns the ids by name."""
    g = manager.create(name="global", scope="GLOBAL")
    manager.start(g.id)
    ids = {"global": g.id}
    for name in ("a", "b"):
        p = manager.create(name=f"project-{name}", scope="PROJECT", parent_id=g.id,
                           project_id=name)
        manager.start(p.id)
        for run in ("1", "2"):
            r = manager.create(name=f"run-{name}{run}", scope="ORCHESTRATION",
                               parent_id=p.id)
            ids[f"{name}{run}"] = r.id
        ids[name] = p.id
    return ids


@pytest.fixture
def hooked(clean_graph, database):
    hooks = HookRegistry(timeout=HOOK_SECONDS * 3)
    return InstanceManager(clean_graph, database, hooks=hooks)


def _slow_hook_on(instance_id: str, started: threading.Event, release: threading.Event):
    def hook(context):
        if context.instance_id == instance_id:
            started.set()
            release.wait(HOOK_SECONDS)
    return hook


@pytest.mark.parametrize("other", ["b1", "a2"], ids=["other-project", "sibling"])
def test_a_slow_before_hook_holds_up_no_write_elsewhere(hooked, other):
    ids = _tree(hooked)
    started, release = threading.Event(), threading.Event()
    hooked.hooks.register("on_start", _slow_hook_on(ids["a1"], started, release),
                          when="before")
    warm = "b2" if other == "a2" else "a2"  # the server compiles each statement once
    for event in ("start", "heartbeat", "pause"):
        getattr(hooked, event)(ids[warm])
    slow = threading.Thread(target=hooked.start, args=(ids["a1"],))
    slow.start()
    try:
        assert started.wait(5)
        began = time.monotonic()
        hooked.start(ids[other])
        hooked.heartbeat(ids[other])
        hooked.pause(ids[other])
        elapsed = time.monotonic() - began
        assert not release.is_set() and slow.is_alive()  # the hook still runs
    finally:
        release.set()
        slow.join()
    assert elapsed < 1.0, f"writes elsewhere waited {elapsed:.2f} s for A's hook"
    assert hooked.get(ids["a1"]).status is S.ACTIVE
    assert hooked.get(ids[other]).status is S.PAUSED


def test_a_hook_past_its_time_limit_vetoes_naming_the_hook(clean_graph, database):
    manager = InstanceManager(clean_graph, database, hooks=HookRegistry(timeout=0.2))
    ids = _tree(manager)

    def dawdle(context):
        time.sleep(1.0)

    manager.hooks.register("on_start", dawdle, when="before")
    with pytest.raises(HookTimedOut, match=r"dawdle.*0.2 s") as caught:
        manager.start(ids["a1"])
    assert isinstance(caught.value, HookVetoed)
    assert caught.value.details["hook_function"].endswith("dawdle")
    assert manager.get(ids["a1"]).status is S.CREATED
    assert [e.event for e in manager.history(ids["a1"])] == ["create"]


def test_a_change_that_loses_its_race_after_the_hooks_reaches_no_after_hook(hooked):
    ids = _tree(hooked)
    started, release = threading.Event(), threading.Event()
    hooked.hooks.register("on_start", _slow_hook_on(ids["a1"], started, release),
                          when="before")
    after: list[str] = []
    hooked.hooks.register("on_start", lambda c: after.append(c.instance_id))
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            hooked.start(ids["a1"])
        except BaseException as exc:
            outcome.append(exc)

    slow = threading.Thread(target=start)
    slow.start()
    assert started.wait(5)
    hooked.archive(ids["a1"])  # while the start's hook runs
    release.set()
    slow.join()
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidTransition)
    assert after == []
    assert hooked.get(ids["a1"]).status is S.ARCHIVED
    assert [e.event for e in hooked.history(ids["a1"])] == ["create", "archive"]


def test_a_vetoed_bulk_import_writes_nothing(manager):
    g = manager.create(name="global", scope="GLOBAL")

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
    ids = _tree(manager)
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


def test_the_feed_never_skips_an_event_under_eight_writers(clean_graph, database):
    manager = InstanceManager(clean_graph, database)
    g = manager.create(name="global", scope="GLOBAL")
    manager.start(g.id)
    runs = []
    for i in range(8):
        p = manager.create(name=f"p{i}", scope="PROJECT", parent_id=g.id, project_id=f"p{i}")
        manager.start(p.id)
        r = manager.create(name=f"r{i}", scope="ORCHESTRATION", parent_id=p.id)
        manager.start(r.id)
        runs.append(r.id)
    stop = time.monotonic() + 4.0
    errors: list[BaseException] = []

    def writer(run_id: str) -> None:
        try:
            while time.monotonic() < stop:
                manager.pause(run_id)
                manager.resume(run_id)
        except BaseException as exc:
            errors.append(exc)

    seen: list[int] = []

    def reader() -> None:
        try:
            while time.monotonic() < stop + 0.5:
                batch = manager.events_since(seen[-1] if seen else 0, limit=50)
                seen.extend(e.seq for e in batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(r,)) for r in runs]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    while batch := manager.events_since(seen[-1], limit=1000):
        seen.extend(e.seq for e in batch)
    assert seen == list(range(1, len(seen) + 1))  # each once, in order, none filled in later
    total = sum(len(manager.history(r)) for r in runs) + 8 * 2 + 2  # + projects, GLOBAL
    assert len(seen) == total


def test_subscribers_get_events_with_their_seq(manager):
    got = []
    manager.subscribe(got.append)
    g = manager.create(name="global", scope="GLOBAL")
    manager.start(g.id)
    assert [(e.event, e.instance_id) for e in got] == [("create", g.id), ("start", g.id)]
    assert got[0].seq < got[1].seq
    assert [e.seq for e in manager.events_since(0)] == [e.seq for e in got]


def test_a_write_leaves_a_bookmark_that_a_read_can_follow(manager):
    g = manager.create(name="global", scope="GLOBAL")
    bookmarks = last_bookmarks()
    assert bookmarks and all(isinstance(b, str) for b in bookmarks)
    with following(bookmarks):
        assert manager.get(g.id).id == g.id
    with following(["not-a-bookmark"]), pytest.raises(ValidationError) as caught:
        manager.get(g.id)
    assert "bookmark" in caught.value.errors
