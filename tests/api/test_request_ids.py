"""X-Request-ID (issue 23, item 3): taken or made, echoed on every response, in every problem
and on every log line of its request; HOPPER_LOG_FORMAT=json writes one object per line."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from hopper_graph import logs
from hopper_graph.errors import ConfigurationError, DatabaseUnavailable
from hopper_graph.feed import Feed
from tests.api.conftest import assert_problem

URL = "/api/v1/instances"
RID = "X-Request-ID"
BANNER = "hopper-graph 0"
"""``serve``'s one line to the terminal before the server starts (``--json`` makes it JSON)."""


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("given", ["abc-123", "Root=1-5759e988-bd862e3fe1be46a994272793",
                                   "a" * 128, str(uuid.uuid4()), "trace:span/1@edge_2.x~"])
def test_a_safe_id_is_echoed_on_success_and_on_errors(client, given):
    headers = {RID: given}
    assert client.get(URL, headers=headers).headers[RID] == given
    unknown = client.get(f"{URL}/{uuid.uuid4()}", headers=headers)
    assert assert_problem(unknown, 404, "not-found")["request_id"] == given
    no_route = client.get("/nowhere", headers=headers)
    assert assert_problem(no_route, 404)["request_id"] == given
    bad = client.post(URL, json={"scope": "GLOBAL"}, headers=headers)
    assert assert_problem(bad, 422)["request_id"] == given
    assert client.get("/health", headers=headers).headers[RID] == given


@pytest.mark.parametrize("given", ["", " ", "a" * 129, "has space", "new\u00e9", "x;y",
                                   "<script>", "quote\"d", "tab\tbed"])
def test_an_unsafe_id_is_replaced_by_a_fresh_one(client, given):
    response = client.get(URL, headers={RID: given})
    assert response.headers[RID] != given and is_uuid(response.headers[RID])


def test_without_an_id_each_request_gets_its_own(client):
    first, second = (client.get(URL).headers[RID] for _ in range(2))
    assert is_uuid(first) and is_uuid(second) and first != second


def test_a_401_from_the_token_guard_carries_the_id(make_app):
    client = make_app(HOPPER_API_TOKEN="s3cret").test_client()
    body = assert_problem(client.get(URL, headers={RID: "who-knocked"}), 401, "unauthorized")
    assert body["request_id"] == "who-knocked"


def test_an_unexpected_error_carries_the_id(make_app):
    app = make_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("internal detail")

    body = assert_problem(app.test_client().get("/boom", headers={RID: "boom-1"}), 500)
    assert body["request_id"] == "boom-1"


def test_browsers_may_send_and_read_the_id(make_app):
    client = make_app(HOPPER_CORS_ORIGINS="https://ui.example").test_client()
    origin = {"Origin": "https://ui.example"}
    response = client.get(URL, headers=origin)
    assert RID in response.headers["Access-Control-Expose-Headers"]
    preflight = client.options(URL, headers={**origin, "Access-Control-Request-Method": "GET",
                                             "Access-Control-Request-Headers": RID})
    assert RID.lower() in preflight.headers["Access-Control-Allow-Headers"].lower()


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(logs.RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler, root = Captured(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_the_librarys_log_lines_carry_the_request_id(client, h, captured):
    g = h.global_()
    h.event(g, "start", headers={RID: "start-g", "X-Actor": "ops@example"})
    started = [r for r in captured.records if getattr(r, "event", None) == "start"]
    assert len(started) == 1
    record = started[0]
    assert (record.request_id, record.instance_id, record.actor) == (
        "start-g", g["id"], "ops@example")
    line = json.loads(logs.json_formatter().format(record))
    assert {"time", "level", "logger", "message", "process"} <= line.keys()
    assert (line["request_id"], line["instance_id"], line["event"], line["actor"]) == (
        "start-g", g["id"], "start", "ops@example")
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", None, None)
    captured.handle(outside)
    assert outside.request_id is None  # the id ended with its request


def test_an_event_streams_log_lines_carry_its_request_id(client, h, captured, monkeypatch):
    """A stream's body is written after the request's teardown (which clears the id)."""
    def failing(self, cursor, members):
        yield None
        raise DatabaseUnavailable("Neo4j went away")
    monkeypatch.setattr(Feed, "_follow", failing)
    response = client.get("/api/v1/events/stream", headers={RID: "follow-1"},
                          buffered=False)
    assert response.headers[RID] == "follow-1"
    assert b"".join(response.response).startswith(b"retry:")
    response.close()
    ended = [r for r in captured.records if r.getMessage().startswith("event stream ended")]
    assert [r.request_id for r in ended] == ["follow-1"]
    assert logs.REQUEST_ID.get() is None  # and the thread serves the next request clean


def test_the_log_settings_are_checked():
    assert logs.log_format(None) == "text" and logs.log_format("JSON") == "json"
    assert logs.log_level(None) == logging.WARNING and logs.log_level("info") == logging.INFO
    for bad in (lambda: logs.log_format("xml"), lambda: logs.log_level("loud")):
        with pytest.raises(ConfigurationError):
            bad()


def test_serve_logs_one_json_object_per_line_with_the_request_id(serve_process):
    server = serve_process("--workers", "1", "--threads", "4", split_output=True,
                           HOPPER_LOG_FORMAT="json", HOPPER_LOG_LEVEL="INFO")
    body = json.dumps({"name": "global", "scope": "GLOBAL"}).encode()
    status, headers, text = server.request("POST", URL, {RID: "create-g", "Content-Type":
                                                         "application/json"}, body)
    assert status == 201 and headers["x-request-id"] == "create-g"
    gid = json.loads(text)["id"]
    status, headers, _ = server.request("POST", f"{URL}/{gid}/start",
                                        {RID: "start-g", "X-Actor": "ops@example"})
    assert status == 200 and headers["x-request-id"] == "start-g"
    status, headers, text = server.request("GET", "/nowhere", {RID: "lost-1"})
    assert status == 404 and json.loads(text)["request_id"] == "lost-1"
    status, headers, text = server.request("GET", "/nowhere", {RID: "bad id"})
    made = headers["x-request-id"]
    assert is_uuid(made) and json.loads(text)["request_id"] == made
    server.stop()  # every line is written
    assert server.stdout is not None
    lines = [line for path in (server.log, server.stdout)
             for line in path.read_text().splitlines()
             if line.strip() and not line.startswith(BANNER)]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "message"} <= r.keys() for r in records)
    by_id: dict[str, list[dict]] = {}
    for record in records:
        by_id.setdefault(record.get("request_id") or "", []).append(record)
    started = [r for r in by_id["start-g"] if r.get("event") == "start"]
    assert len(started) == 1
    assert (started[0]["instance_id"], started[0]["actor"]) == (gid, "ops@example")
    access = {r["request_id"]: r for r in records if r.get("logger") == "gunicorn.access"}
    assert (access["create-g"]["method"], access["create-g"]["status"]) == ("POST", 201)
    assert (access["lost-1"]["path"], access["lost-1"]["status"]) == ("/nowhere", 404)
    assert access[made]["status"] == 404
    assert all(r["duration_seconds"] >= 0 for r in access.values())
