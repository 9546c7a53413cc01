"""Real threads against the real server: transitions never both apply, nothing is lost."""

from __future__ import annotations

import logging
import random
import threading

from hopper_graph import HopperGraphError, InstanceStatus
from hopper_graph.machine import EVENTS, TRANSITIONS


def run_threads(n, target):
    barrier = threading.Barrier(n)
    results = [[] for _ in range(n)]

    def worker(i):
        barrier.wait()
        target(i, results[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for rs in results for r in rs]


def test_random_events_on_one_instance_replay_to_the_final_status(manager):
    g = manager.create(name="g", scope="GLOBAL")
    manager.start(g.id)
    p = manager.create(name="p", scope="PROJECT", parent_id=g.id, project_id="p")

    def fire(i, out):
        rng = random.Random(i)
        for _ in range(15):
            event = rng.choice([e for e in EVENTS if e != "archive"])
            try:
                result = manager.transition(p.id, event, actor=f"t{i}")
                out.append(("ok", event, result.previous_status, result.status))
            except HopperGraphError as exc:
                out.append(("refused", event, type(exc).__name__))

    outcomes = run_threads(8, fire)
    successes = [o for o in outcomes if o[0] == "ok"]
    assert all(o[2] == "InvalidTransition" for o in outcomes if o[0] == "refused")
    history = [e for e in manager.history(p.id) if e.event != "create"]
    assert len(history) == len(successes)
    status = InstanceStatus.CREATED
    for event in history:  # the log is a valid walk of the machine, in seq order
        assert event.from_status is status
        status = TRANSITIONS[status, event.event]
        assert event.to_status is status
    assert manager.get(p.id).status is status
    assert manager.get(p.id).version == 1 + len(successes)


def test_stop_parent_racing_start_child_never_leaves_an_active_child(manager):
    g = manager.create(name="g", scope="GLOBAL")
    manager.start(g.id)
    for round_ in range(6):
        p = manager.create(name=f"p{round_}", scope="PROJECT", parent_id=g.id,
                           project_id=f"p{round_}")
        manager.start(p.id)
        kids = [manager.create(name=f"k{round_}-{i}", scope="ORCHESTRATION", parent_id=p.id,
                               instance_type="PERSISTENT") for i in range(5)]

        def act(i, out, p=p, kids=kids):
            try:
                if i == 0:
                    manager.stop(p.id)
                else:
                    manager.start(kids[i - 1].id)
                out.append("ok")
            except HopperGraphError as exc:
                out.append(type(exc).__name__)

        outcomes = run_threads(6, act)
        assert set(outcomes) <= {"ok", "ParentNotActive"}
        assert manager.get(p.id).status is InstanceStatus.STOPPED
        assert all(manager.get(k.id).status is not InstanceStatus.ACTIVE for k in kids)


def test_delete_racing_create_child(manager):
    g = manager.create(name="g", scope="GLOBAL")
    for round_ in range(6):
        p = manager.create(name=f"d{round_}", scope="PROJECT", parent_id=g.id,
                           project_id=f"d{round_}")

        def act(i, out, p=p, round_=round_):
            try:
                if i == 0:
                    manager.delete(p.id)
                else:
                    manager.create(name=f"c{round_}-{i}", scope="ORCHESTRATION",
                                   parent_id=p.id)
                out.append("ok")
            except HopperGraphError as exc:
                out.append(type(exc).__name__)

        outcomes = run_threads(4, act)
        # Either the create came first (and was deleted with the subtree) or it found no
        # parent: never an orphan.
        assert set(outcomes) <= {"ok", "ScopeRuleViolation"}
        orphans = manager.repository.rows(
            "MATCH (n:HopperInstance {scope: 'ORCHESTRATION'}) "
            "WHERE NOT ()-[:PARENT_OF]->(n) RETURN n.id AS id")
        assert orphans == []


class _DeadlockRetries(logging.Handler):
    """Counts the driver's warnings that a transaction hit a deadlock and will be retried."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "DeadlockDetected" in record.getMessage():
            self.count += 1


def test_mixed_writers_under_shared_parents_neither_deadlock_nor_lose_updates(manager):
    """Creates, transitions and deletes under two shared parents, from four threads. Every
    writer locks top down, the parent in a statement of its own, so none waits for another
    in a circle (locked by a FOREACH over the matched parent, this workload met a deadlock
    retry every few dozen writes), and versions and seq lose no increment."""
    g = manager.create(name="g", scope="GLOBAL")
    manager.start(g.id)
    parents = [manager.create(name=f"p{i}", scope="PROJECT", parent_id=g.id,
                              project_id=f"p{i}",
                              config={"limits": {"max_child_instances": 500}}).id
               for i in range(2)]
    for parent in parents:
        manager.start(parent)
    retries = _DeadlockRetries()
    logging.getLogger("neo4j").addHandler(retries)
    writes: dict[str, int] = {}  # instance id -> successful writes
    lock = threading.Lock()

    def work(i, out):
        rng = random.Random(i)
        mine: list[str] = []
        for step in range(60):
            if not mine or rng.random() < 0.3:
                made = manager.create(name=f"w{i}-{step}", scope="ORCHESTRATION",
                                      parent_id=parents[step % 2],
                                      instance_type="PERSISTENT")
                mine.append(made.id)
                with lock:
                    writes[made.id] = 1
            elif rng.random() < 0.15:
                manager.delete(mine.pop(rng.randrange(len(mine))), force=True)
            else:
                target = rng.choice(mine)
                event = {"CREATED": "start", "ACTIVE": "pause", "PAUSED": "resume",
                         "STOPPED": None}[manager.get(target).status.value]
                if event:
                    manager.transition(target, event)
                    with lock:
                        writes[target] += 1
        out.extend(mine)

    try:
        alive = run_threads(4, work)
    finally:
        logging.getLogger("neo4j").removeHandler(retries)

    assert retries.count == 0
    for instance_id in alive:
        assert manager.get(instance_id).version == writes[instance_id]
    seqs = [e.seq for e in manager.events_since(0, 100_000)]
    assert seqs == list(range(1, len(seqs) + 1))
