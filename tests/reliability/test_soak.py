"""A bounded soak: client threads run a mixed workload over HTTP against a real WSGI server
on loopback for ``HOPPER_SOAK_SECONDS`` (default 60), then the graph is checked.

Each client owns the orchestrations it creates, so every answer it should get is known in
advance: all of them must be 2xx, the graph must agree with each client's model of its
instances, and the invariant checker must find nothing.
The figures (requests, throughput, latency percentiles per operation, answers by status)
are printed and written to tests/reliability/results/soak.json.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest

from hopper_graph import InstanceManager
from tests.factories import make_global, make_project
from tests.reliability.conftest import (
    API,
    URL,
    LiveServer,
    Reply,
    assert_consistent,
    percentiles,
    write_results,
)

SECONDS = float(os.environ.get("HOPPER_SOAK_SECONDS", "60"))
CLIENTS = int(os.environ.get("HOPPER_SOAK_CLIENTS", "6"))
PROJECTS = 3
OWNED = 10
"""Live orchestrations a client keeps at most (creates pause while it has this many)."""
WEIGHTS = {kind: int(weight) for kind, weight in (pair.split("=") for pair in os.environ.get(
    "HOPPER_SOAK_MIX", "create=25,transition=30,read=35,delete=10").split(","))}
NEXT_EVENTS = {"CREATED": ("start", "archive"), "ACTIVE": ("pause", "stop"),
               "PAUSED": ("resume", "stop")}


class RetryCounter(logging.Handler):
    """Counts the driver's "Transaction failed and will be retried" warnings, by cause."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.causes: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "will be retried" in message:
            cause = "deadlock" if "DeadlockDetected" in message else "other"
            self.causes[cause] += 1


@dataclass
class Client:
    """One client thread's workload, its model of what it owns, and what it saw."""

    number: int
    live: LiveServer
    projects: list[str]
    deadline: float
    owned: dict[str, str] = field(default_factory=dict)  # id -> status it should have
    replies: list[tuple[str, Reply]] = field(default_factory=list)
    made: int = 0

    def run(self) -> None:
        rng = random.Random(self.number)
        while time.monotonic() < self.deadline:
            kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
            getattr(self, kind)(rng)

    def call(self, kind: str, method: str, path: str, body: dict | None = None) -> Reply:
        reply = self.live.call(method, path, body, headers={"X-Actor": f"soak-{self.number}"})
        self.replies.append((kind, reply))
        return reply

    def create(self, rng: random.Random) -> None:
        if len(self.owned) >= OWNED:
            return self.delete(rng)
        self.made += 1
        reply = self.call("create", "POST", URL, {
            "name": f"soak-{self.number}-{self.made}", "scope": "ORCHESTRATION",
            "parent_id": rng.choice(self.projects), "metadata": {"client": self.number}})
        if reply.status == 201:
            self.owned[reply.json["id"]] = "CREATED"

    def transition(self, rng: random.Random) -> None:
        movable = [i for i, s in self.owned.items() if s in NEXT_EVENTS]
        if not movable:
            return self.create(rng)
        instance_id = rng.choice(movable)
        event = rng.choice(NEXT_EVENTS[self.owned[instance_id]])
        reply = self.call("transition", "POST", f"{URL}/{instance_id}/{event}",
                          {"reason": "soak"})
        if reply.status == 200:  # EPHEMERAL: a stop archives it too
            self.owned[instance_id] = reply.json["instance"]["status"]

    def read(self, rng: random.Random) -> None:
        project = rng.choice(self.projects)
        mine = rng.choice(list(self.owned)) if self.owned else project
        path = rng.choice([
            f"{URL}/{mine}", f"{URL}/{mine}/history", f"{URL}/{mine}/health",
            f"{URL}/{mine}/ancestors", f"{URL}/{project}/children?limit=50",
            f"{URL}/{project}/tree?format=flat", f"{URL}?scope=ORCHESTRATION&limit=20",
            f"{API}/events?after={rng.randrange(0, 50)}&limit=50"])
        self.call("read", "GET", path)

    def delete(self, rng: random.Random) -> None:
        if not self.owned:
            return self.create(rng)
        instance_id = rng.choice(list(self.owned))
        running = self.owned[instance_id] in ("ACTIVE", "PAUSED")
        reply = self.call("delete", "DELETE",
                          f"{URL}/{instance_id}" + ("?force=true" if running else ""))
        if reply.status == 200:
            del self.owned[instance_id]


@pytest.mark.slow
def test_soak_mixed_workload(live, lib: InstanceManager, clean_graph, database):
    g = make_global(lib)
    lib.start(g.id)
    projects = []
    for n in range(PROJECTS):
        p = make_project(lib, g, name=f"soak-project-{n}", project_id=f"soak-{n}")
        lib.start(p.id)
        projects.append(p.id)
    retries = RetryCounter()
    logging.getLogger("neo4j").addHandler(retries)
    started = time.monotonic()
    clients = [Client(n, live, projects, started + SECONDS) for n in range(CLIENTS)]
    threads = [threading.Thread(target=c.run, name=f"soak-{c.number}") for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    logging.getLogger("neo4j").removeHandler(retries)

    replies = [pair for c in clients for pair in c.replies]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, reply in replies:
        by_kind[kind].append(reply.elapsed)
    by_status = Counter(reply.status for _, reply in replies)
    failures = Counter(f"{kind} {reply.status} {reply.code}" for kind, reply in replies
                       if reply.status >= 300)
    figures = {
        "seconds": round(elapsed, 1), "clients": CLIENTS, "requests": len(replies),
        "requests_per_second": round(len(replies) / elapsed, 1),
        "latency": percentiles([r.elapsed for _, r in replies]),
        "latency_by_operation": {k: {"requests": len(v), **percentiles(v)}
                                 for k, v in sorted(by_kind.items())},
        "by_status": {str(k): v for k, v in sorted(by_status.items())},
        "errors": dict(failures),
        "driver_retries": dict(retries.causes),
    }
    write_results("soak", figures)

    # Every answer was a success.
    server_errors = sum(n for status, n in by_status.items() if status >= 500)
    assert server_errors == 0, figures["errors"]
    assert sum(failures.values()) == 0, failures
    for client in clients:  # the graph agrees with what each client was told
        for instance_id, status in client.owned.items():
            assert lib.get(instance_id).status.value == status
    assert_consistent(clean_graph, database)
