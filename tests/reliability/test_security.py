"""Security over a real socket: the token guards every operation the OpenAPI document
lists, errors never show internals, and CORS headers appear only for configured origins.

The operations come from the served document itself, so a new endpoint is covered (and
must be reachable in ``Targets``) without editing the test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from neo4j.exceptions import CypherSyntaxError, DatabaseError, ServiceUnavailable

from api import EXTENSION
from hopper_graph import InstanceManager
from tests.factories import make_global
from tests.reliability.conftest import (
    URL,
    LiveServer,
    Reply,
    assert_consistent,
    assert_no_leak,
    assert_problem_reply,
    census,
)

TOKEN = "correct-horse-battery-staple"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
BAD_CREDENTIALS = {
    "missing": {},
    "wrong-token": {"Authorization": "Bearer wrong"},
    "token-prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "token-with-suffix": {"Authorization": f"Bearer {TOKEN}x"},
    "basic-scheme": {"Authorization": f"Basic {TOKEN}"},
    "no-scheme": {"Authorization": TOKEN},
    "empty-bearer": {"Authorization": "Bearer "},
    "other-header": {"X-Api-Token": TOKEN},
}
METHODS = ("get", "post", "patch", "put", "delete")


def operations(live: LiveServer) -> list[tuple[str, str]]:
    """(METHOD, path template) of every operation the document says needs the token."""
    reply = live.call("GET", "/api/v1/openapi.json")
    assert reply.status == 200  # the document itself is open
    document = reply.json
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS and operation.get("security", document.get("security")):
                found.append((method.upper(), path))
    # An event stream never ends, and a call reads its whole body: its token is tested in
    # tests/api/test_event_stream.py instead.
    return [(method, path) for method, path in found if not path.endswith("/stream")]


class Targets:
    """For each operation, a path and body that succeed when the token is right: every
    lifecycle event gets an instance in a status that allows it."""

    def __init__(self, lib: InstanceManager) -> None:
        self.lib = lib
        g = make_global(lib)
        lib.start(g.id)
        self.global_id = g.id
        self.count = 0

    def project(self, *events: str) -> str:
        self.count += 1
        p = self.lib.create(name=f"p{self.count}", scope="PROJECT", parent_id=self.global_id,
                            project_id="alpha" if self.count == 1 else f"alpha-{self.count}")
        for event in events:
            self.lib.transition(p.id, event)
        return p.id

    def request(self, method: str, template: str) -> tuple[str, Any]:
        prepared = {"start": (), "pause": ("start",), "resume": ("start", "pause"),
                    "stop": ("start",), "archive": ()}
        event = template.rsplit("/", 1)[-1]
        instance_id = self.project(*prepared.get(event, ()))
        path = template.replace("{instance_id}", instance_id).replace("{project_id}", "alpha")
        if "{lien_id}" in path:  # a lien of its own to remove
            lien = self.lib.add_lien(instance_id, "security walk", "tests")
            path = path.replace("{lien_id}", lien.id)
        body: Any = None
        if (method, template) == ("POST", URL):
            body = {"name": f"new-{self.count}", "scope": "PROJECT",
                    "parent_id": self.global_id, "project_id": f"new-{self.count}"}
        elif method == "PATCH":
            body = {"metadata": {"owner": "ops"}}
        elif (method, event) == ("POST", "liens"):
            body = {"reason": "security walk", "origin": "tests"}
        elif event == "move":  # the PROJECT becomes a sub-project of a new one
            body = {"parent_id": self.project()}
        return path, body


def test_every_operation_refuses_bad_tokens_and_works_with_the_right_one(
        make_app, serve, lib, clean_graph, database):
    live = serve(make_app(HOPPER_API_TOKEN=TOKEN))
    targets = Targets(lib)
    found = operations(live)
    assert len(found) >= 20
    prepared = [(method, template, *targets.request(method, template))
                for method, template in found]
    before = census(clean_graph, database)
    for method, template, path, body in prepared:
        for name, headers in BAD_CREDENTIALS.items():
            reply = live.call(method, path, body, headers=headers)
            assert_problem_reply(reply, 401, "unauthorized")
            assert reply.headers["www-authenticate"].startswith('Bearer realm="hopper-graph"'), \
                (method, template, name)
    assert census(clean_graph, database) == before  # nothing refused changed anything
    for method, template, path, body in prepared:
        reply = live.call(method, path, body, headers=GOOD)
        assert 200 <= reply.status < 300, (method, template, reply.status, reply.text[:300])
    assert_consistent(clean_graph, database)


def test_the_token_is_not_needed_for_probes_and_the_document(make_app, serve, clean_graph,
                                                             database):
    live = serve(make_app(HOPPER_API_TOKEN=TOKEN))
    for path in ("/health", "/ready", "/api/v1/openapi.json"):
        assert live.call("GET", path).status == 200
    assert_consistent(clean_graph, database)


RAISERS: dict[str, Callable[[], BaseException]] = {
    "runtime-error": lambda: RuntimeError("MATCH (n) secret"),
    "key-error": lambda: KeyError("secret MATCH (n:HopperInstance)"),
    "neo4j-database-error": lambda: DatabaseError("MATCH (n) secret failed"),
    "neo4j-syntax-error": lambda: CypherSyntaxError("Invalid input: MATCH (n) secret"),
    "neo4j-unavailable": lambda: ServiceUnavailable("secret host 10.0.0.7 MATCH"),
}


@pytest.mark.parametrize("raiser", RAISERS.values(), ids=RAISERS.keys())
def test_errors_never_show_internals(make_app, serve, lib, clean_graph, database,
                                     monkeypatch, raiser):
    """Whatever a view meets deep down, the client sees a generic problem: no stack trace,
    no Cypher, no message of the exception."""
    g = make_global(lib)
    app = make_app()
    manager = app.extensions[EXTENSION].manager

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise raiser()

    for name in ("get", "transition", "create"):
        monkeypatch.setattr(manager, name, explode)
    live = serve(app)
    replies: list[Reply] = [
        live.call("GET", f"{URL}/{g.id}"),
        live.call("POST", f"{URL}/{g.id}/start"),
        live.call("POST", URL, {"name": "p", "scope": "PROJECT", "parent_id": g.id,
                                "project_id": "p"}),
    ]
    status = 503 if isinstance(raiser(), ServiceUnavailable) else 500
    for reply in replies:
        body = assert_problem_reply(reply, status)
        assert body["code"] in ("internal-error", "database-unavailable")
        assert_no_leak(" ".join(f"{k}: {v}" for k, v in reply.headers.items()))
        assert "secret" not in reply.text and "10.0.0.7" not in reply.text
    assert_consistent(clean_graph, database)


def test_cors_is_off_unless_origins_are_configured(make_app, serve, clean_graph, database):
    origin = "https://ui.example"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "Authorization, Content-Type"}
    closed = serve(make_app())
    for reply in (closed.call("GET", URL, headers={"Origin": origin}),
                  closed.call("OPTIONS", URL, headers=preflight),
                  closed.call("GET", "/health", headers={"Origin": origin})):
        assert not any(k.startswith("access-control-") for k in reply.headers), reply.headers

    before = census(clean_graph, database)
    open_ = serve(make_app(HOPPER_CORS_ORIGINS=origin, HOPPER_API_TOKEN=TOKEN))
    listed = open_.call("GET", URL, headers={"Origin": origin, **GOOD})
    assert listed.status == 200
    assert listed.headers["access-control-allow-origin"] == origin
    assert "Origin" in listed.headers["vary"]
    unlisted = open_.call("GET", URL, headers={"Origin": "https://evil.example", **GOOD})
    assert "access-control-allow-origin" not in unlisted.headers
    refused = open_.call("GET", URL, headers={"Origin": origin})  # CORS is no credential
    assert_problem_reply(refused, 401, "unauthorized")
    answered = open_.call("OPTIONS", URL, headers=preflight)  # preflights carry no token
    assert answered.status < 300
    assert answered.headers["access-control-allow-origin"] == origin
    assert "POST" in answered.headers["access-control-allow-methods"]
    assert census(clean_graph, database) == before
    assert_consistent(clean_graph, database)
