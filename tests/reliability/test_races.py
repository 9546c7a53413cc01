"""Races over HTTP: real client threads against a real WSGI server, released together.

Each race has a small set of serial outcomes (the results some one-at-a-time order of the
same requests would give); the test asserts the exact counts of one of them, that the graph
agrees with what the clients were told, and that the invariant checker finds nothing.
"""

from __future__ import annotations

import itertools
import threading
import time

from tests.factories import make_global, make_orchestration, make_project
from tests.reliability.conftest import (
    URL,
    LiveServer,
    Reply,
    assert_consistent,
    census,
    history,
    outcomes,
    race,
)

THREADS = 8
READ_RACE_SECONDS = 8.0


def post(live: LiveServer, path: str, body: dict | None = None,
         headers: dict[str, str] | None = None) -> Reply:
    return live.call("POST", path, body, headers=headers)


def test_second_global_exactly_one_wins(live, lib, clean_graph, database):
    replies = race([lambda i=i: post(live, URL, {"name": f"global-{i}", "scope": "GLOBAL"})
                    for i in range(THREADS)])
    assert outcomes(replies) == {(201, None): 1,
                                 (409, "global-already-exists"): THREADS - 1}
    winner = next(r.json for r in replies if r.status == 201)
    assert lib.get_global_instance().id == winner["id"]
    assert lib.list(scope="GLOBAL").total == 1
    assert_consistent(clean_graph, database)


def test_same_name_and_scope_exactly_one_wins(live, lib, clean_graph, database):
    g = make_global(lib)
    replies = race([lambda i=i: post(live, URL, {
        "name": "contested", "scope": "PROJECT", "parent_id": g.id, "project_id": f"p{i}"})
        for i in range(THREADS)])
    assert outcomes(replies) == {(201, None): 1, (409, "duplicate-name"): THREADS - 1}
    assert [i.name for i in lib.get_children(g.id)] == ["contested"]
    assert_consistent(clean_graph, database)


def test_last_child_slots_are_never_exceeded(live, lib, clean_graph, database):
    g = make_global(lib)
    p = make_project(lib, g, name="alpha", config={"limits": {"max_child_instances": 5}})
    for i in range(3):
        make_orchestration(lib, p, name=f"early-{i}")
    replies = race([lambda i=i: post(live, URL, {
        "name": f"late-{i}", "scope": "ORCHESTRATION", "parent_id": p.id})
        for i in range(THREADS)])
    assert outcomes(replies) == {(201, None): 2, (409, "limit-exceeded"): THREADS - 2}
    children = {c.id for c in lib.get_children(p.id)}
    assert len(children) == 5
    assert {r.json["id"] for r in replies if r.status == 201} <= children
    assert_consistent(clean_graph, database)


def test_identical_transitions_on_one_instance_apply_once(live, lib, clean_graph, database):
    g = make_global(lib)
    lib.start(g.id)
    p = make_project(lib, g, name="alpha")
    lib.start(p.id)
    replies = race([lambda: post(live, f"{URL}/{p.id}/pause") for _ in range(THREADS)])
    assert outcomes(replies) == {(200, None): 1, (409, "invalid-transition"): THREADS - 1}
    refused = [r.json for r in replies if r.status == 409]
    assert all(b["current_status"] == "PAUSED" for b in refused)
    assert [e["event"] for e in history(clean_graph, database, p.id)] == \
        ["create", "start", "pause"]
    assert_consistent(clean_graph, database)


def test_mixed_transitions_pinned_by_if_match_form_one_chain(live, lib, clean_graph,
                                                              database):
    """Each thread reads the instance, picks the event its status allows, and sends it
    pinned to the ETag it read: per version exactly one wins, the rest get 412."""
    g = make_global(lib)
    lib.start(g.id)
    p = make_project(lib, g, name="alpha")
    lib.start(p.id)
    toggle = {"ACTIVE": "pause", "PAUSED": "resume"}

    def worker() -> list[Reply]:
        replies: list[Reply] = []
        for _ in range(6):
            seen = live.call("GET", f"{URL}/{p.id}")
            event = toggle[seen.json["status"]]
            replies.append(post(live, f"{URL}/{p.id}/{event}",
                                headers={"If-Match": seen.headers["etag"]}))
        return replies

    replies = [r for thread in race([worker] * THREADS) for r in thread]
    counts = outcomes(replies)
    assert set(counts) <= {(200, None), (412, "concurrent-modification")}, counts
    applied = counts.get((200, None), 0)
    assert applied >= 1
    events = history(clean_graph, database, p.id)[2:]  # after create and start
    assert len(events) == applied
    status = "ACTIVE"
    for event in events:  # one unbroken chain: each event starts where the last ended
        assert event["from_status"] == status
        status = event["to_status"]
    assert lib.get(p.id).status.value == status
    assert lib.get(p.id).version == 2 + applied
    assert_consistent(clean_graph, database)


def test_stop_parent_against_start_children(live, lib, clean_graph, database):
    """Every child start either came first (then the stop's cascade stopped it) or came
    after (then it was refused because the parent is not ACTIVE)."""
    g = make_global(lib)
    lib.start(g.id)
    for round_ in range(3):
        p = make_project(lib, g, name=f"parent-{round_}", project_id=f"p{round_}")
        lib.start(p.id)
        kids = [make_project(lib, p, name=f"kid-{round_}-{i}", project_id=f"p{round_}").id
                for i in range(THREADS - 1)]
        calls = [lambda p=p: post(live, f"{URL}/{p.id}/stop")]
        calls += [lambda k=k: post(live, f"{URL}/{k}/start") for k in kids]
        stop, *starts = race(calls)
        assert stop.status == 200, stop.text
        started = {k for k, r in zip(kids, starts, strict=True) if r.status == 200}
        refused = {k for k, r in zip(kids, starts, strict=True) if r.status == 409}
        assert started | refused == set(kids)
        assert all(r.code == "parent-not-active" for r in starts if r.status == 409)
        cascaded = {c["id"] for c in stop.json["cascaded"] if c["event"] == "stop"}
        assert cascaded == started
        for k in kids:
            assert lib.get(k).status.value == ("STOPPED" if k in started else "CREATED")
        assert lib.get(p.id).status.value == "STOPPED"
    assert_consistent(clean_graph, database)


def test_delete_parent_against_create_children(live, lib, clean_graph, database):
    """Every child create either came first (then the delete took it along) or came after
    (then its parent no longer exists); no child is left without a parent."""
    g = make_global(lib, limits={"max_child_instances": 10})
    for round_ in range(3):
        p = make_project(lib, g, name=f"doomed-{round_}", project_id=f"d{round_}")
        calls = [lambda p=p: live.call("DELETE", f"{URL}/{p.id}")]
        calls += [lambda name=f"late-{round_}-{i}", p=p: post(live, URL, {
            "name": name, "scope": "ORCHESTRATION", "parent_id": p.id})
            for i in range(THREADS - 1)]
        delete, *creates = race(calls)
        assert delete.status == 200, delete.text
        created = {r.json["id"] for r in creates if r.status == 201}
        for reply in creates:
            if reply.status != 201:
                assert reply.status == 422 and reply.code == "scope-rule-violation", reply.text
                assert "parent_id" in reply.json["errors"]
        assert set(delete.json["deleted"]) == created | {p.id}
        for child in created:  # created, then deleted with its parent: both events kept
            assert [e["event"] for e in history(clean_graph, database, child)] == \
                ["create", "delete"]
    instances = census(clean_graph, database)["instances"]
    assert [name for _, name, _, _ in instances] == ["global"]
    assert_consistent(clean_graph, database)


def test_reads_racing_deletes_never_fail(live, lib, clean_graph, database):
    """Readers list, page and walk a parent's subtree while writers add and delete its
    children: every read answers 200 with a consistent page."""
    g = make_global(lib)
    p = make_project(lib, g, name="alpha", config={"limits": {"max_child_instances": 1000}})
    done = threading.Event()
    paths = [f"{URL}/{p.id}/children", f"{URL}/{p.id}/descendants", f"{URL}/{p.id}/tree",
             f"{URL}?parent_id={p.id}"]

    def churn(n: int) -> None:
        for i in itertools.count():
            if done.is_set():
                return
            child = lib.create(name=f"churn-{n}-{i}", scope="ORCHESTRATION", parent_id=p.id)
            lib.delete(child.id)

    def read(n: int) -> list[Reply]:
        replies: list[Reply] = []
        deadline = time.monotonic() + READ_RACE_SECONDS
        while time.monotonic() < deadline and not any(r.status >= 500 for r in replies):
            replies.append(live.call("GET", paths[len(replies) % len(paths)]))
        return replies

    writers = [threading.Thread(target=churn, args=(n,)) for n in range(3)]
    for writer in writers:
        writer.start()
    try:
        replies = [r for thread in race([lambda n=n: read(n) for n in range(3)])
                   for r in thread]
    finally:
        done.set()
        for writer in writers:
            writer.join()
    assert outcomes(replies) == {(200, None): len(replies)}
    assert_consistent(clean_graph, database)
