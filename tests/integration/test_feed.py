"""Following the change feed live (hopper_graph.feed), against the real Neo4j.

Waits are bounded (``within``) so a broken follower fails the test instead of hanging it;
no test asserts how fast an event arrives, only that it does.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from hopper_graph import InstanceManager, NotFound, ValidationError, feed
from hopper_graph.models import InstanceEvent
from tests.conftest import wipe
from tests.factories import make_global

WITHIN = 10.0
"""Seconds a test waits for events before it fails (they come in well under one)."""


@contextlib.contextmanager
def following(manager: InstanceManager, after: int = 0,
              subtree: str | None = None) -> Iterator[Iterator[InstanceEvent | None]]:
    """A follower that yields None at least every 0.1 s, closed at the end."""
    with contextlib.closing(manager.feed.follow(after, subtree, heartbeat=0.1)) as events:
        yield events


def take(events: Iterator[InstanceEvent | None], count: int,
         within: float = WITHIN) -> list[InstanceEvent]:
    """The next ``count`` events (heartbeats skipped); fails after ``within`` seconds."""
    got: list[InstanceEvent] = []
    deadline = time.monotonic() + within
    while len(got) < count:
        assert time.monotonic() < deadline, f"only {len(got)} of {count} events came"
        event = next(events)
        if event is not None:
            got.append(event)
    return got


def quiet(events: Iterator[InstanceEvent | None], seconds: float = 0.5) -> list[InstanceEvent]:
    """What the follower yields in ``seconds`` (it must yield heartbeats meanwhile)."""
    got: list[InstanceEvent] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        event = next(events)
        if event is not None:
            got.append(event)
    return got


def test_the_follower_reads_the_past_then_each_new_event_as_it_commits(manager, tree):
    g, a = tree[:2]
    past = manager.events_since(0, 100)
    with following(manager) as events:
        assert take(events, len(past)) == past
        manager.start(g.id)
        manager.start(a.id)
        started = take(events, 2)
    assert [(e.instance_id, e.event) for e in started] == [(g.id, "start"), (a.id, "start")]
    assert [e.seq for e in started] == [past[-1].seq + 1, past[-1].seq + 2]
    assert started == manager.events_since(past[-1].seq, 100)


def test_events_written_by_another_process_reach_it(manager, tree, driver, database):
    """A writer elsewhere leaves its events pending: the poller numbers them."""
    g = tree[0]
    elsewhere = InstanceManager(driver, database)  # no subscribers: it numbers nothing
    with following(manager, after=manager.feed.head()) as events:
        elsewhere.start(g.id)
        [event] = take(events, 1)
    assert (event.instance_id, event.event, event.to_status.value) == (g.id, "start", "ACTIVE")


def test_a_resumed_follower_misses_nothing_and_repeats_nothing(manager, tree):
    g, a, _, run = tree
    for instance in (g, a, run):
        manager.start(instance.id)
    every = manager.events_since(0, 100)
    cut = every[3].seq
    with following(manager, after=cut) as events:
        resumed = take(events, len(every) - 4)
        manager.stop(run.id)  # an ORCHESTRATION is EPHEMERAL: stop, then archive
        stopped = take(events, 2)
        assert quiet(events) == []
    assert resumed == every[4:]
    assert [(e.seq, e.event) for e in stopped] == [(every[-1].seq + 1, "stop"),
                                                   (every[-1].seq + 2, "archive")]


def test_the_subtree_filter_keeps_the_subtree_deletes_included(manager, tree):
    g, a, b, run = tree
    other = manager.create(name="b-run", scope="ORCHESTRATION", parent_id=b.id)
    with following(manager, subtree=a.id) as events:
        past = take(events, 2)
        assert [(e.instance_id, e.event) for e in past] == [(a.id, "create"), (run.id, "create")]
        manager.start(g.id)  # above the subtree: not in it
        manager.start(b.id)
        manager.start(other.id)  # a sibling's subtree
        manager.start(a.id)
        second = manager.create(name="a-run-2", scope="ORCHESTRATION", parent_id=a.id)
        manager.delete(run.id)  # a deleted instance is still placed in the subtree
        live = take(events, 3)
        assert quiet(events) == []
    assert [(e.instance_id, e.event) for e in live] == [
        (a.id, "start"), (second.id, "create"), (run.id, "delete")]


def test_a_deleted_subtree_keeps_its_history_in_the_filter(manager, tree):
    """Read later, the events of instances deleted since are still placed: by the parent
    their delete recorded, up through parents deleted with them."""
    g, a, b, run = tree
    deep = manager.create(name="a-run-deep", scope="ORCHESTRATION", parent_id=run.id)
    manager.start(g.id)
    manager.start(a.id)
    manager.start(run.id)
    manager.stop(run.id)
    manager.delete(run.id)  # run and deep go; a stays
    manager.delete(b.id)
    expected = [(e.instance_id, e.event) for e in manager.events_since(0, 100)
                if e.instance_id in (a.id, run.id, deep.id)]
    with following(manager, subtree=a.id) as events:
        got = take(events, len(expected))
        assert quiet(events) == []
    assert [(e.instance_id, e.event) for e in got] == expected
    assert (deep.id, "delete") in expected and (b.id, "delete") not in expected


def test_following_a_deleted_root_sees_its_subtree_go(manager, tree):
    _, a, _, run = tree
    with following(manager, after=manager.feed.head(), subtree=a.id) as events:
        manager.delete(a.id)
        got = take(events, 2)
    assert {(e.instance_id, e.event) for e in got} == {(a.id, "delete"), (run.id, "delete")}


def test_many_followers_share_one_poller_which_stops_when_they_leave(manager, tree):
    g = tree[0]
    start = manager.feed.head()
    with contextlib.ExitStack() as stack:
        followers = [stack.enter_context(following(manager, after=start)) for _ in range(5)]
        for events in followers:
            quiet(events, 0.05)  # each has opened its inbox by now
        assert sum(t.name == "hopper-feed-poller" for t in threading.enumerate()) == 1
        assert feed.broadcaster(manager.graph).followers == 5
        manager.start(g.id)
        for events in followers:
            assert [e.event for e in take(events, 1)] == ["start"]
    deadline = time.monotonic() + WITHIN
    while any(t.name == "hopper-feed-poller" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the poller outlived its followers"
        time.sleep(0.05)


def test_a_follower_that_falls_behind_catches_up_from_the_database(manager, tree,
                                                                    monkeypatch):
    monkeypatch.setattr(feed, "MAX_QUEUED", 3)
    g, a, b, run = tree
    start = manager.feed.head()
    with following(manager, after=start) as events:
        quiet(events, 0.05)
        for instance in (g, a, b, run):
            manager.start(instance.id)
        manager.stop(run.id)
        manager.pause(a.id)
        time.sleep(0.5)  # the poller overfills the inbox meanwhile
        expected = manager.events_since(start, 100)
        assert len(expected) > feed.MAX_QUEUED
        assert take(events, len(expected)) == expected
        assert quiet(events) == []


def test_bad_input_fails_before_anything_is_followed(manager, tree):
    with pytest.raises(ValidationError):
        manager.feed.follow(after=-1)
    with pytest.raises(NotFound):
        manager.feed.follow(subtree="00000000-0000-0000-0000-000000000000")
    assert feed.broadcaster(manager.graph).followers == 0


def test_read_gives_a_page_of_the_feed_across_reads(manager, tree, monkeypatch):
    monkeypatch.setattr(feed, "CATCH_UP_PAGE", 2)  # every page takes several reads
    g, a, b, run = tree
    for instance in (g, a, b, run):
        manager.start(instance.id)
    every = manager.events_since(0, 100)
    assert manager.feed.read() == every
    assert manager.feed.read(after=every[1].seq, limit=3) == every[2:5]
    in_a = [e for e in every if e.instance_id in (a.id, run.id)]
    assert manager.feed.read(subtree=a.id) == in_a
    assert manager.feed.read(after=in_a[0].seq, subtree=a.id, limit=2) == in_a[1:3]
    assert manager.feed.read(after=every[-1].seq) == []


@pytest.mark.timeout(60)  # a follower that did not end would wait forever
def test_close_all_ends_every_follower(manager, tree):
    followers = [manager.feed.follow(manager.feed.head(), heartbeat=0.1) for _ in range(3)]
    for events in followers:
        quiet(events, 0.05)
    feed.close_all()
    for events in followers:
        assert all(event is None for event in list(events))  # it ends: list() returns
    assert feed.broadcaster(manager.graph).followers == 0


@pytest.mark.timeout(60)
def test_close_all_for_good_also_ends_followers_that_had_not_begun(manager, tree,
                                                                   monkeypatch):
    """A server's stop: an HTTP stream's generator opens its inbox at its first step, which
    may come after the stop's close_all; it must end then too, not hold the stop up."""
    monkeypatch.setattr(feed, "_ending_for_good", False)  # restored after the test
    made_before = manager.feed.follow(manager.feed.head(), heartbeat=0.1)  # not begun
    feed.close_all(for_good=True)
    made_after = manager.feed.follow(manager.feed.head(), heartbeat=0.1)
    assert list(made_before) == []
    assert list(made_after) == []
    assert feed.broadcaster(manager.graph).followers == 0


def test_close_all_leaves_followers_that_begin_later_alone(manager, tree):
    feed.close_all()
    with following(manager, after=manager.feed.head()) as events:
        manager.start(tree[0].id)
        assert [e.event for e in take(events, 1)] == ["start"]


def test_a_poller_that_outlives_an_emptied_graph_starts_over(manager, tree, driver,
                                                              database):
    g = tree[0]
    manager.start(g.id)
    with following(manager, after=manager.feed.head()) as old:
        quiet(old, 0.05)  # the poller runs, its head at the last seq
        wipe(driver, database)
        g = make_global(manager, name="g")  # seq 1 again
        with following(manager) as new:
            assert [e.event for e in take(new, 1)] == ["create"]
            manager.start(g.id)
            assert [(e.seq, e.event) for e in take(new, 1)] == [(2, "start")]
