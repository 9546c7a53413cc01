"""GET /api/v1/events/stream under a real gunicorn, as ``hopper-graph serve`` runs it.

Each test starts ``hopper-graph serve`` (gthread workers) on a free port against the test
Neo4j, reads the stream with http.client, and writes through the library in this process,
as another service would: the server learns of the events only from the database.

One timed assertion, because the issue states a latency bound as behaviour: a committed
event reaches an open stream within 200 ms. The test allows 2 s (a loaded CI machine with
two cores shared by Neo4j, gunicorn and pytest), and prints what it measured.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from hopper_graph.errors import ConfigurationError
from tests.api.serve_process import ServeProcess

HEARTBEAT = 0.5
"""The server's keep-alive interval in these tests (15 s by default)."""
MAX_STREAMS = 2


@dataclass
class Event:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: str | None = None

    @property
    def json(self) -> Any:
        return json.loads("\n".join(self.data))


class Stream:
    """One open event stream, read block by block (a block ends with a blank line)."""

    def __init__(self, port: int, path: str = "/api/v1/events/stream",
                 headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream",
                                                **(headers or {})})
        self.response = self.conn.getresponse()

    def block(self) -> Event:
        block = Event()
        while True:
            line = self.response.readline().decode().rstrip("\n")
            if not line:
                return block
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                block.comments.append(value)
            elif name == "data":
                block.data.append(value)
            else:
                setattr(block, name, value)

    def events(self, count: int, within: float = 10.0) -> list[Event]:
        """The next ``count`` events (keep-alives skipped); fails after ``within`` s."""
        got: list[Event] = []
        deadline = time.monotonic() + within
        while len(got) < count:
            assert time.monotonic() < deadline, f"only {len(got)} of {count} events came"
            block = self.block()
            if block.event is not None:
                got.append(block)
        return got

    def quiet(self, seconds: float = 1.5) -> list[Event]:
        """The events that come in ``seconds`` (keep-alives keep the reads short)."""
        got: list[Event] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            block = self.block()
            if block.event is not None:
                got.append(block)
        return got

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def served(serve_process) -> ServeProcess:
    """``hopper-graph serve`` on a free port, one worker of 4 threads, 2 stream slots."""
    return serve_process("--workers", "1", "--threads", "4",
                         HOPPER_API_MAX_STREAMS=str(MAX_STREAMS),
                         HOPPER_API_STREAM_HEARTBEAT=str(HEARTBEAT))


@contextlib.contextmanager
def stream(port: int, path: str = "/api/v1/events/stream",
           headers: dict[str, str] | None = None) -> Iterator[Stream]:
    opened = Stream(port, path, headers)
    try:
        assert opened.response.status == 200, opened.response.read()
        assert opened.response.getheader("Content-Type").startswith("text/event-stream")
        assert opened.block().retry is not None  # the stream is open from here on
        yield opened
    finally:
        opened.close()


def summary(events: list[Event]) -> list[tuple[str | None, str | None, str]]:
    return [(e.id, e.event, e.json["instance_id"]) for e in events]


def test_a_committed_event_reaches_an_open_stream(served, manager, tree):
    g = tree[0]
    head = manager.feed.head()
    with stream(served.port, f"/api/v1/events/stream?after={head}") as events:
        manager.start(g.id)  # returns once it committed
        committed = time.monotonic()
        [got] = events.events(1)
        latency = time.monotonic() - committed
        assert events.quiet(2 * HEARTBEAT) == []  # keep-alives only
    [expected] = manager.events_since(head, 10)
    assert (got.id, got.event) == (str(expected.seq), "start")
    assert got.json == expected.to_dict()
    print(f"\nevent reached the stream {latency * 1000:.0f} ms after its commit")
    assert latency < 2.0


def test_a_stream_sends_keep_alive_comments(served, manager, tree):
    with stream(served.port, f"/api/v1/events/stream?after={manager.feed.head()}") as events:
        assert "keep-alive" in events.block().comments


def test_last_event_id_resumes_without_gap_or_duplicate(served, manager, tree):
    g, a, _, run = tree
    for instance in (g, a, run):
        manager.start(instance.id)
    every = manager.events_since(0, 100)
    with stream(served.port, "/api/v1/events/stream?after=0",
                headers={"Last-Event-ID": str(every[2].seq)}) as events:
        resumed = events.events(len(every) - 3)
        manager.pause(a.id)  # cascades to run
        live = events.events(2)
        assert events.quiet() == []
    assert [int(e.id) for e in resumed] == [e.seq for e in every[3:]]
    assert [int(e.id) for e in live] == [every[-1].seq + 1, every[-1].seq + 2]
    assert {e.json["instance_id"] for e in live} == {a.id, run.id}
    with stream(served.port, f"/api/v1/events/stream?after={every[-2].seq}") as events:
        assert [int(e.id) for e in events.events(3)] == [
            every[-1].seq, every[-1].seq + 1, every[-1].seq + 2]


def test_the_subtree_filter_keeps_the_subtree_and_its_deletes(served, manager, tree):
    g, a, b, run = tree
    with stream(served.port, f"/api/v1/events/stream?subtree={a.id}") as events:
        past = events.events(2)
        manager.start(g.id)
        manager.start(b.id)
        manager.start(a.id)
        manager.delete(run.id)
        live = events.events(2)
        assert events.quiet() == []
    assert [(e.event, e.json["instance_id"]) for e in past + live] == [
        ("create", a.id), ("create", run.id), ("start", a.id), ("delete", run.id)]


def test_a_full_worker_answers_503_with_retry_after_and_keeps_serving(served, manager, tree):
    with contextlib.ExitStack() as open_streams:
        first = [open_streams.enter_context(stream(served.port)) for _ in range(MAX_STREAMS)]
        started = time.monotonic()
        status, headers, body = served.get("/api/v1/events/stream")
        assert time.monotonic() - started < 10  # refused at once, never queued
        assert status == 503
        assert headers["retry-after"].isdigit()
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(body)["code"] == "too-many-streams"
        assert served.get("/api/v1/events?limit=1")[0] == 200  # threads left for the rest
        first[0].close()
        deadline = time.monotonic() + 10  # the server notices within a second
        while True:
            again = Stream(served.port)
            again.close()
            if again.response.status == 200:
                break
            assert time.monotonic() < deadline, "a closed stream kept its slot"
            time.sleep(HEARTBEAT)


def test_a_stopping_server_ends_its_streams_instead_of_waiting_for_them(served, manager):
    """gunicorn's graceful stop waits up to 30 s for open requests; a stream is never done,
    so serve ends the streams first."""
    with stream(served.port) as events:
        os.killpg(served.process.pid, signal.SIGTERM)
        stopped = time.monotonic()
        while True:
            line = events.response.readline()
            if not line:
                break  # the stream ended
        assert served.process.wait(timeout=25) == 0
    assert time.monotonic() - stopped < 25


# -- bad input: refused before a stream opens (the test client is enough) -----------------
@pytest.mark.parametrize(("query", "headers", "status", "code"), [
    ("?after=-1", {}, 400, "invalid-query"),
    ("?subtree=not-a-uuid", {}, 400, "invalid-query"),
    ("?since=3", {}, 400, "invalid-query"),
    ("", {"Last-Event-ID": "abc"}, 400, "bad-request"),
    ("", {"Last-Event-ID": "-3"}, 400, "bad-request"),
    ("?subtree=00000000-0000-0000-0000-000000000000", {}, 404, "not-found"),
])
def test_bad_stream_requests_get_a_problem(client, query, headers, status, code):
    response = client.get(f"/api/v1/events/stream{query}", headers=headers)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == code


def test_a_stream_takes_no_slot_when_it_is_refused(make_app):
    app = make_app(HOPPER_API_MAX_STREAMS=1)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/events/stream?after=-1").status_code == 400
    response = client.get("/api/v1/events/stream", buffered=False)
    assert response.status_code == 200
    assert client.get("/api/v1/events/stream").status_code == 503
    response.close()
    response = client.get("/api/v1/events/stream?after=0", buffered=False)
    assert response.status_code == 200
    response.close()


def test_the_stream_needs_the_token_when_one_is_set(make_app):
    client = make_app(HOPPER_API_TOKEN="s3cret").test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = client.get("/api/v1/events/stream", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["code"] == "unauthorized"
    response = client.get("/api/v1/events/stream", buffered=False,
                          headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    response.close()


def test_the_openapi_document_describes_the_stream(client):
    operation = client.get("/api/v1/openapi.json").get_json()["paths"][
        "/api/v1/events/stream"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert {(p["in"], p["name"]) for p in operation["parameters"]} == {
        ("query", "after"), ("query", "subtree"), ("query", "selector"),
        ("header", "Last-Event-ID")}
    assert {"400", "401", "404", "503"} <= set(operation["responses"])


@pytest.mark.parametrize("setting", [{"HOPPER_API_MAX_STREAMS": "-1"},
                                     {"HOPPER_API_MAX_STREAMS": "two"},
                                     {"HOPPER_API_STREAM_HEARTBEAT": "0"}])
def test_stream_settings_are_checked_at_start(make_app, setting):
    with pytest.raises(ConfigurationError, match=next(iter(setting))):
        make_app(**setting)


def test_no_stream_slots_turns_streams_off(make_app):
    response = make_app(HOPPER_API_MAX_STREAMS=0).test_client().get("/api/v1/events/stream")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_the_documented_recipe_for_only_new_events_sees_exactly_those(served, manager, tree):
    """docs/api.md: read `head` from a feed page, open the stream with ?after=<head>."""
    g, a, _, run = tree
    manager.start(g.id)
    status, _, body = served.get("/api/v1/events?limit=1")
    page = json.loads(body)
    assert status == 200 and page["head"] == manager.events_since(0, 100)[-1].seq
    with stream(served.port, f"/api/v1/events/stream?after={page['head']}") as events:
        for instance in (a, run):
            manager.start(instance.id)
        got = events.events(2)
        assert events.quiet() == []
    assert [(e.event, e.json["instance_id"]) for e in got] == [("start", a.id),
                                                             ("start", run.id)]
    assert [int(e.id) for e in got] == [page["head"] + 1, page["head"] + 2]
