"""Fixtures for the reliability suite: apps over the session's Neo4j, real WSGI servers on
loopback spoken to with plain ``http.client``, a census of the graph, and the invariant
check every test ends with.

The API is served by werkzeug's threaded server in a background thread of this process, so
racing clients are real threads with real sockets, and each request runs in its own server
thread against the one driver the app was given.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from flask import Flask
from neo4j import Driver
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from hopper_graph import InstanceManager
from hopper_graph.audit import sequence_all
from hopper_graph.checker import check_invariants
from hopper_graph.graph import Graph

T = TypeVar("T")
HOST = "127.0.0.1"
API = "/api/v1"
URL = f"{API}/instances"
PROBLEM = "application/problem+json"
RESULTS = Path(__file__).parent / "results"
"""Where the soak and fuzz runs write their figures (git-ignored by its own .gitignore)."""
LEAKS = ("Traceback", 'File "', "MATCH", "neo4j.exceptions", "secret")
"""What no response body may contain: stack traces, Cypher, internals, the planted secret."""


# -- HTTP over a real socket -----------------------------------------------------------------
@dataclass
class Reply:
    """One HTTP exchange as the client saw it."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    text: str
    elapsed: float
    started: float

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def code(self) -> str | None:
        """The problem's ``code`` when this is a problem+json answer."""
        if self.content_type != PROBLEM:
            return None
        code: str | None = self.json.get("code")
        return code


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without a log line per request (the soak makes thousands)."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class LiveServer:
    """An app served by werkzeug's threaded WSGI server on an ephemeral loopback port."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server: BaseWSGIServer = make_server(HOST, 0, app, threaded=True,
                                                  request_handler=_QuietHandler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True,
                                       name=f"wsgi-{self.port}")
        self.thread.start()

    def call(self, method: str, path: str, body: Any = None, *,
             headers: dict[str, str] | None = None, data: bytes | None = None,
             timeout: float = 60.0) -> Reply:
        """Send one request on a fresh connection; ``body`` is sent as JSON, ``data`` raw."""
        sent = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        started = time.monotonic()
        connection = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            reply_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        return Reply(method, path, response.status, reply_headers, text,
                     time.monotonic() - started, started)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def race(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run each call in its own thread, all released at once; their results, in order."""
    barrier = threading.Barrier(len(calls))
    replies: list[T | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            replies[index] = calls[index]()
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return replies  # type: ignore[return-value]


def outcomes(replies: Sequence[Reply]) -> dict[tuple[int, str | None], int]:
    """How many replies had each (status, problem code)."""
    counts: dict[tuple[int, str | None], int] = {}
    for reply in replies:
        key = (reply.status, reply.code)
        counts[key] = counts.get(key, 0) + 1
    return counts


def assert_problem_reply(reply: Reply, status: int, code: str | None = None) -> dict[str, Any]:
    """An RFC 9457 answer with this status (and code) that leaks nothing internal."""
    assert reply.status == status, (reply.method, reply.path, reply.status, reply.text[:500])
    assert reply.content_type == PROBLEM, reply.headers
    body: dict[str, Any] = reply.json
    assert body["status"] == status
    assert body["type"] == f"urn:hopper-graph:problem:{body['code']}"
    if code is not None:
        assert body["code"] == code, body
    assert body["request_id"] == reply.headers["x-request-id"], (body, reply.headers)
    assert_no_leak(reply.text)
    return body


def assert_no_leak(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} in a response: {text[:500]}"


# -- the graph ---------------------------------------------------------------------------------
def assert_consistent(driver: Driver, database: str | None = None) -> None:
    """The invariant checker finds nothing: how every test in this suite ends."""
    violations = check_invariants(driver, database)
    assert violations == [], "\n".join(f"{v.kind}: {v.message}" for v in violations)


def census(driver: Driver, database: str | None = None) -> dict[str, Any]:
    """What a refused request must leave as it was: node (but the event counter, which a
    read of the feed may create) and edge counts, and every
    instance's (id, name, status, version)."""
    records, _, _ = driver.execute_query(
        "MATCH (n) WHERE NOT n:HopperCounter WITH count(n) AS nodes "
        "OPTIONAL MATCH ()-[r]->() WITH nodes, count(r) AS edges "
        "OPTIONAL MATCH (i:HopperInstance) "
        "WITH nodes, edges, i ORDER BY i.id "
        "RETURN nodes, edges, collect(CASE WHEN i IS NOT NULL "
        "THEN [i.id, i.name, i.status, i.version] END) AS instances",
        database_=database)
    return records[0].data()


def history(driver: Driver, database: str | None, instance_id: str) -> list[dict[str, Any]]:
    """An instance's audit events straight from the graph, in the feed's order. Events
    still waiting for their seq are numbered first, as any reader of the feed does: left
    pending, they would sort last in no particular order."""
    sequence_all(Graph(driver, database))
    records, _, _ = driver.execute_query(
        "MATCH (e:InstanceEvent {instance_id: $id}) RETURN e {.*} AS e ORDER BY e.seq",
        {"id": instance_id}, database_=database)
    return [r["e"] for r in records]


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """Write a run's figures to tests/reliability/results/<name>.json and print them."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"\n{name}: {json.dumps(figures, indent=2, sort_keys=True)}\n(written to {path})")
    return path


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max of latencies in seconds, reported in milliseconds (nearest rank)."""
    if not samples:
        return {}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)
    return {"p50_ms": rank(0.50), "p95_ms": rank(0.95), "p99_ms": rank(0.99),
            "max_ms": round(1000 * ordered[-1], 2)}


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture
def serve() -> Iterator[Callable[[Flask], LiveServer]]:
    """Start live servers for apps; each is shut down when the test ends."""
    servers: list[LiveServer] = []

    def start(app: Flask) -> LiveServer:
        servers.append(LiveServer(app))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def live(make_app: Callable[..., Flask], serve: Callable[[Flask], LiveServer]) -> LiveServer:
    """The API with default settings, on a real socket."""
    return serve(make_app())


@pytest.fixture
def lib(clean_graph: Driver, database: str | None) -> InstanceManager:
    """The library over the same wiped graph, to build the scene a test starts from."""
    return InstanceManager(clean_graph, database)
