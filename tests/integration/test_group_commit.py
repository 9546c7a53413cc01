"""Group commit against the real server: batches share a statement, each caller gets its
own answer, a refused row fails alone, a lone writer sends one statement, and a killed
process loses no write it acknowledged."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from hopper_graph import HopperGraphError, InstanceStatus
from hopper_graph.errors import DuplicateName, InvalidTransition, NotFound, ParentNotActive
from hopper_graph.graph import following, last_bookmarks, reset_last_bookmarks
from hopper_graph.lifecycle import TRANSITIONS
from tests.threads import run_threads

ROOT = Path(__file__).resolve().parents[2]


def running_tree(manager, runs: int, projects: int = 2):
    g = manager.create(name="g", scope="GLOBAL")
    manager.start(g.id)
    ps = [manager.create(name=f"p{i}", scope="PROJECT", parent_id=g.id, project_id=f"p{i}")
          for i in range(projects)]
    for p in ps:
        manager.start(p.id)
    ids = [manager.create(name=f"r{i}", scope="ORCHESTRATION", parent_id=ps[i % projects].id,
                          instance_type="PERSISTENT").id for i in range(runs)]
    return g, ps, ids


class Held:
    """Holds the first batch of a GroupCommit until released, so the test knows which
    requests queue behind it and share the next batch."""

    def __init__(self, group) -> None:
        self.group, self.run = group, group._run
        self.entered, self.release = threading.Event(), threading.Event()
        self.sizes: list[int] = []
        group._run = self

    def __call__(self, requests):
        self.sizes.append(len(requests))
        if len(self.sizes) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return self.run(requests)

    def wait_queued(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.group._queue) < count:
            assert time.monotonic() < deadline, "the writers never queued"
            time.sleep(0.002)


def in_thread(fn, *args, out: dict, key):
    def run():
        try:
            out[key] = fn(*args)
        except HopperGraphError as exc:
            out[key] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_refused_row_fails_alone_and_the_rest_of_its_batch_commits(manager):
    ids = running_tree(manager, 6)[2]
    for run in ids[:4]:
        manager.start(run)
    held = Held(manager.repository.batches.transitions)
    out: dict = {}
    first = in_thread(manager.pause, ids[0], out=out, key="first")
    assert held.entered.wait(10)
    plan = {"pause-1": (manager.pause, ids[1]), "pause-2": (manager.pause, ids[2]),
            "resume-3": (manager.resume, ids[3]),  # ACTIVE: refused
            "pause-4": (manager.pause, ids[4]),  # CREATED: refused
            "missing": (manager.start, "00000000-0000-4000-8000-000000000000")}
    threads = [in_thread(fn, arg, out=out, key=key) for key, (fn, arg) in plan.items()]
    held.wait_queued(len(plan))
    held.release.set()
    for thread in [first, *threads]:
        thread.join(10)
    assert held.sizes == [1, len(plan)]  # the five shared one statement
    assert isinstance(out["resume-3"], InvalidTransition)
    assert out["resume-3"].details["status"] == "ACTIVE"
    assert isinstance(out["pause-4"], InvalidTransition)
    assert out["pause-4"].details["allowed_events"] == ["start", "archive"]
    assert isinstance(out["missing"], NotFound)
    for key in ("first", "pause-1", "pause-2"):
        assert out[key].status is InstanceStatus.PAUSED, key
    assert [manager.get(i).status.value for i in ids[:5]] == [
        "PAUSED", "PAUSED", "PAUSED", "ACTIVE", "CREATED"]
    assert [e.event for e in manager.history(ids[3])] == ["create", "start"]


def test_a_guard_on_the_parent_is_checked_per_row(manager):
    _, (_, p1), ids = running_tree(manager, 4)
    manager.stop(p1.id)  # the odd runs are under a stopped PROJECT now
    held = Held(manager.repository.batches.transitions)
    out: dict = {}
    first = in_thread(manager.start, ids[0], out=out, key=ids[0])
    assert held.entered.wait(10)
    threads = [in_thread(manager.start, i, out=out, key=i) for i in ids[1:]]
    held.wait_queued(3)
    held.release.set()
    for thread in [first, *threads]:
        thread.join(10)
    assert isinstance(out[ids[1]], ParentNotActive)
    assert isinstance(out[ids[3]], ParentNotActive)
    assert out[ids[2]].status is InstanceStatus.ACTIVE


def test_sixteen_threads_on_shared_and_own_instances_agree_with_a_serial_replay(manager):
    ids = running_tree(manager, 12, projects=4)[2]
    shared, own = ids[:4], ids[4:]
    for run in ids:
        manager.start(run)
    group = manager.repository.batches.transitions

    def fire(i, out):
        rng = random.Random(i)
        for _ in range(25):
            target = rng.choice(shared) if i % 2 else own[i % len(own)]
            event = rng.choice(["pause", "resume", "stop", "start"])
            try:
                result = manager.transition(target, event, actor=f"t{i}")
                out.append((target, "ok", result.previous_status, result.status))
            except InvalidTransition as exc:
                out.append((target, "refused", exc.details["status"], None))

    outcomes = run_threads(16, fire)
    assert group.largest > 1, "no batch was shared: the test proves nothing"
    applied = Counter(target for target, kind, *_ in outcomes if kind == "ok")
    for run in ids:
        history = [e for e in manager.history(run) if e.event not in ("create",)][1:]
        status = InstanceStatus.ACTIVE  # after the start made above
        for event in history:  # every applied change is in the log, a walk of the machine
            assert event.from_status is status
            status = TRANSITIONS[status, event.event]
            assert event.to_status is status
        stored = manager.get(run)
        assert len(history) == applied[run]
        assert stored.status is status
        assert stored.version == 2 + applied[run]  # create, start, then one per change
    for _, kind, before, after in outcomes:  # each answer is one edge of the machine
        if kind == "ok":
            assert after in {t for (s, _), t in TRANSITIONS.items() if s is before}


def test_a_lone_writer_sends_one_statement_and_waits_for_no_batch(manager, monkeypatch):
    ids = running_tree(manager, 1)[2]
    statements: list[str] = []
    graph = manager.repository.batches.graph
    original = graph._auto

    def counted(write, query, params):
        statements.append(query)
        return original(write, query, params)
    monkeypatch.setattr(graph, "_auto", counted)
    manager.start(ids[0])
    manager.pause(ids[0])
    manager.heartbeat(ids[0])
    assert len(statements) == 3
    assert manager.repository.batches.transitions.largest == 1


def test_heartbeats_from_many_threads_each_get_their_instance(manager):
    ids = running_tree(manager, 8)[2]
    for run in ids[:7]:
        manager.start(run)
    manager.archive(ids[7])
    results: dict = {}

    def beat(i, out):
        for _ in range(10):
            try:
                out.append((ids[i % 8], manager.heartbeat(ids[i % 8]).id))
            except InvalidTransition as exc:
                out.append((ids[i % 8], exc.details["status"]))
    outcomes = run_threads(16, beat)
    for target, answer in outcomes:
        results.setdefault(target, set()).add(answer)
    assert results[ids[7]] == {"ARCHIVED"}
    assert all(results[i] == {i} for i in ids[:7])
    assert all(manager.get(i).heartbeat_at is not None for i in ids[:7])
    assert manager.get(ids[7]).heartbeat_at is None


WRITER = textwrap.dedent("""
    import json, sys, threading
    from hopper_graph import InstanceManager, Neo4jSettings, connect
    settings = Neo4jSettings(**json.loads(sys.argv[1]))
    ids = sys.argv[2:]
    manager = InstanceManager(connect(settings), settings.database)
    lock = threading.Lock()
    def toggle(run):
        paused = False
        while True:
            result = (manager.resume if paused else manager.pause)(run)
            paused = not paused
            with lock:
                print(run, result.instance.version, flush=True)
    for run in ids:
        threading.Thread(target=toggle, args=(run,), daemon=True).start()
    threading.Event().wait()
""")


def test_a_killed_process_loses_no_acknowledged_write(manager, neo4j_source):
    ids = running_tree(manager, 8)[2]
    for run in ids:
        manager.start(run)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, json.dumps(asdict(neo4j_source.settings)), *ids],
        stdout=subprocess.PIPE, text=True, env=env)
    acknowledged: dict[str, int] = {}
    assert writer.stdout is not None
    for line in writer.stdout:
        run, version = line.split()
        acknowledged[run] = max(acknowledged.get(run, 0), int(version))
        if sum(1 for _ in acknowledged) == len(ids) and min(acknowledged.values()) > 12:
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    writer.stdout.close()
    for run, version in acknowledged.items():
        stored = manager.get(run)
        assert stored.version >= version  # every acknowledged change is there
        changes = [e for e in manager.history(run) if e.event in ("pause", "resume")]
        assert len(changes) == stored.version - 2  # and each has its event


def test_updates_share_a_batch_and_a_taken_name_fails_alone(manager, monkeypatch):
    """A rename onto a taken name fails its whole transaction at commit (a constraint),
    so that batch is written again one row at a time: only the rename fails."""
    ids = running_tree(manager, 6)[2]
    group = manager.repository.batches.updates
    held = Held(group)
    statements: list[int] = []
    graph = manager.repository.batches.graph
    original = graph.write_shared

    def counted(query, follow, **params):
        statements.append(len(params["rows"]))
        return original(query, follow, **params)
    monkeypatch.setattr(graph, "write_shared", counted)
    out: dict = {}
    first = in_thread(lambda: manager.update(ids[0], metadata={"n": 0}), out=out, key="first")
    assert held.entered.wait(10)
    threads = [in_thread(lambda i=i: manager.update(ids[i], metadata={"n": i}), out=out, key=i)
               for i in (1, 2, 3)]
    threads.append(in_thread(lambda: manager.update(ids[4], name="r5"), out=out, key="taken"))
    held.wait_queued(4)
    held.release.set()
    for thread in [first, *threads]:
        thread.join(10)
    assert held.sizes == [1, 4]
    assert statements == [1, 4, 1, 1, 1, 1]  # the batch, refused, then each row alone
    assert isinstance(out["taken"], DuplicateName)
    assert out["taken"].details["existing_id"] == ids[5]
    for i in (1, 2, 3):
        assert out[i].metadata == {"n": i} and manager.get(ids[i]).version == out[i].version
    assert manager.get(ids[4]).name == "r4"
    assert [e.event for e in manager.history(ids[4])] == ["create"]


def test_every_caller_of_a_batch_keeps_the_bookmarks_its_commit_left(manager):
    ids = running_tree(manager, 3)[2]
    for run in ids:
        manager.start(run)
    held = Held(manager.repository.batches.transitions)
    marks: dict = {}

    def pause(run):
        reset_last_bookmarks()
        result = manager.pause(run)
        marks[run] = last_bookmarks()
        return result
    out: dict = {}
    first = in_thread(pause, ids[0], out=out, key=ids[0])
    assert held.entered.wait(10)
    threads = [in_thread(pause, run, out=out, key=run) for run in ids[1:]]
    held.wait_queued(2)
    held.release.set()
    for thread in [first, *threads]:
        thread.join(10)
    assert held.sizes == [1, 2]
    assert all(marks[run] for run in ids)
    assert marks[ids[1]] == marks[ids[2]] != marks[ids[0]]  # one commit, one bookmark
    with following(marks[ids[2]]):
        assert manager.get(ids[1]).status is InstanceStatus.PAUSED
