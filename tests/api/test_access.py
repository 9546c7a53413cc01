"""Every operation of the OpenAPI document, called with a reader, an operator and an admin
token of one PROJECT, on an instance inside that PROJECT's subtree, one outside it, and an
id that exists nowhere: each answers as ``EXPECTED`` says, and an operation missing from
``EXPECTED`` fails the walk, so no endpoint can be added unguarded.

The walk's table (role x operation x target -> status) is written to the file named by
``HOPPER_ACCESS_TABLE`` (markdown), for a release note:
``HOPPER_ACCESS_TABLE=access.md pytest tests/api/test_access.py -k walk``.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Blueprint, Flask

from api import access
from api.extension import EXTENSION
from hopper_graph.tokens import Role
from tests.api.conftest import assert_problem

ADMIN_TOKEN = "the-server-admin-token"
READER, OPERATOR, ADMIN = Role.READER, Role.OPERATOR, Role.ADMIN
MISSING = "00000000-0000-4000-8000-00000000dead"
ROOMY = {"limits": {"max_child_instances": 1000}}
EVENTS = ("start", "stop", "pause", "resume", "archive")

# What each operation needs, and where its target is (a new operation: one line here, and
# its @needs in api/; a body it needs goes in request_for):
#   instance  the {instance_id} of the path
#   parent    the parent_id of the body (a create)
#   graph     the whole graph: no scoped token below GLOBAL reaches it
#   listing   any token with the role; the answer is cut to the token's subtree
#   subtree   a listing whose ?subtree= must be in the token's subtree
EXPECTED: dict[str, tuple[Role, str]] = {
    "GET /api/v1/instances": (READER, "listing"),
    "POST /api/v1/instances": (OPERATOR, "parent"),
    "POST /api/v1/instances/purge": (ADMIN, "listing"),
    "GET /api/v1/instances/global": (READER, "graph"),
    "GET /api/v1/instances/projects/{project_id}": (READER, "listing"),
    "GET /api/v1/instances/projects/{project_id}/orchestrations": (READER, "listing"),
    "GET /api/v1/instances/{instance_id}": (READER, "instance"),
    "PATCH /api/v1/instances/{instance_id}": (OPERATOR, "instance"),
    "DELETE /api/v1/instances/{instance_id}": (ADMIN, "instance"),
    **{f"POST /api/v1/instances/{{instance_id}}/{e}": (OPERATOR, "instance") for e in EVENTS},
    "POST /api/v1/instances/{instance_id}/heartbeat": (OPERATOR, "instance"),
    "GET /api/v1/instances/{instance_id}/children": (READER, "instance"),
    "GET /api/v1/instances/{instance_id}/ancestors": (READER, "instance"),
    "GET /api/v1/instances/{instance_id}/descendants": (READER, "instance"),
    "GET /api/v1/instances/{instance_id}/tree": (READER, "instance"),
    "GET /api/v1/instances/{instance_id}/history": (READER, "instance"),
    "GET /api/v1/instances/{instance_id}/config/effective": (READER, "instance"),
    "GET /api/v1/instances/{instance_id}/health": (READER, "instance"),
    "POST /api/v1/instances/{instance_id}/move": (ADMIN, "instance"),
    "GET /api/v1/instances/{instance_id}/liens": (READER, "instance"),
    "POST /api/v1/instances/{instance_id}/liens": (ADMIN, "instance"),
    "DELETE /api/v1/instances/{instance_id}/liens/{lien_id}": (ADMIN, "instance"),
    "GET /api/v1/events": (READER, "listing"),
    "GET /api/v1/events/stream": (READER, "subtree"),
}
PUBLIC = {"GET /health", "GET /ready"}
"""Probes: never behind a token."""
SIDES = ("inside", "outside", "missing")


@dataclass
class World:
    app: Flask
    tokens: dict[str, str]
    """Role name (and "server" for HOPPER_API_TOKEN) -> bearer secret."""
    project: str
    other: str


@pytest.fixture
def world(make_app) -> World:
    app = make_app(HOPPER_API_TOKEN=ADMIN_TOKEN)
    library = app.extensions[EXTENSION].manager
    g = library.create(name="g", scope="GLOBAL")
    web = library.create(name="website", scope="PROJECT", parent_id=g.id,
                         project_id="website", config=ROOMY)
    billing = library.create(name="billing", scope="PROJECT", parent_id=g.id,
                             project_id="billing", config=ROOMY)
    for instance in (g, web, billing):
        library.start(instance.id)
    tokens = {role.label: library.tokens.create(web.id, role).secret for role in Role}
    return World(app, {**tokens, "server": ADMIN_TOKEN}, web.id, billing.id)


def operations(app: Flask) -> list[str]:
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    return sorted(f"{method.upper()} {path}" for path, item in spec["paths"].items()
                  for method in item if method in ("get", "post", "patch", "delete", "put"))


def request_for(world: World, operation: str, side: str) -> tuple[str, str, dict[str, Any]]:
    """(method, url, client kwargs) of ``operation`` aimed at ``side``; each call that
    names an instance gets a fresh one, so what one call did never decides another's."""
    method, path = operation.split(" ", 1)
    _, kind = EXPECTED[operation]
    library = world.app.extensions[EXTENSION].manager
    parent = {"inside": world.project, "outside": world.other, "missing": MISSING}[side]
    kwargs: dict[str, Any] = {}
    if "{instance_id}" in path:
        target = MISSING if side == "missing" else library.create(
            name=f"run-{uuid.uuid4().hex[:8]}", scope="ORCHESTRATION", parent_id=parent).id
        path = path.replace("{instance_id}", target)
    if "{project_id}" in path:
        path = path.replace("{project_id}", {"inside": "website"}.get(side, "billing"))
    path = re.sub(r"\{\w+\}", str(uuid.uuid4()), path)  # any other id (a lien's): unknown
    if kind == "parent":
        kwargs["json"] = {"name": f"new-{uuid.uuid4().hex[:8]}", "scope": "ORCHESTRATION",
                          "parent_id": parent}
    elif operation.endswith("/move"):  # to where it is: 422 once access lets it through
        kwargs["json"] = {"parent_id": parent}
    elif operation == "POST /api/v1/instances/{instance_id}/liens":
        kwargs["json"] = {"reason": "access walk", "origin": "tests"}
    elif method == "PATCH":
        kwargs["json"] = {"metadata": {"touched": True}}
    elif operation == "POST /api/v1/instances/purge":
        kwargs["json"] = {"dry_run": True}
    elif operation == "GET /api/v1/instances" and side != "inside":
        kwargs["query_string"] = {"parent_id": parent}
    elif kind == "subtree":
        kwargs["query_string"] = {"subtree": parent}
        kwargs["buffered"] = False
    return method, path, kwargs


def expected_denial(role: str, operation: str, side: str) -> bool:
    needed, kind = EXPECTED[operation]
    if role == "server":
        return False
    if Role.parse(role) < needed or kind == "graph":
        return True
    return kind in ("instance", "parent", "subtree") and side != "inside"


def call(world: World, role: str | None, operation: str, side: str) -> Any:
    method, url, kwargs = request_for(world, operation, side)
    headers = {} if role is None else {"Authorization": f"Bearer {world.tokens[role]}"}
    response = world.app.test_client().open(url, method=method, headers=headers, **kwargs)
    if kwargs.get("buffered") is False:
        response.close()
    return response


def test_walk_every_operation_with_each_role_inside_and_outside(world):
    found = operations(world.app)
    unknown = sorted(set(found) - EXPECTED.keys() - PUBLIC)
    assert not unknown, f"operations with no expected access (add them to EXPECTED): {unknown}"
    assert sorted(EXPECTED.keys() - set(found)) == []
    table: dict[tuple[str, str, str], int] = {}
    for operation in sorted(EXPECTED):
        for role in ("reader", "operator", "admin", "server"):
            for side in SIDES:
                response = call(world, role, operation, side)
                table[(operation, role, side)] = response.status_code
                if expected_denial(role, operation, side):
                    body = assert_problem(response, 403, "forbidden")
                    assert body["required_role"] in ("reader", "operator", "admin")
                    assert body["token_role"] == role and body["token_root"] == world.project
                    assert (EXPECTED[operation][1] == "graph") is ("required_root" not in body)
                else:
                    assert response.status_code not in (401, 403, 500), (
                        operation, role, side, response.get_data(as_text=True))
                    if EXPECTED[operation][1] == "listing" and role != "server":
                        assert world.other not in response.get_data(as_text=True), (
                            f"{operation} shows {role} what is outside its subtree")
    write_table(table)


def test_every_operation_needs_a_token(world):
    for operation in sorted(EXPECTED):
        response = call(world, None, operation, "inside")
        assert_problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_id_outside_the_subtree_is_refused_alike_whether_or_not_it_exists(world):
    outside = call(world, "admin", "GET /api/v1/instances/{instance_id}", "outside")
    missing = call(world, "admin", "GET /api/v1/instances/{instance_id}", "missing")
    bodies = [assert_problem(r, 403, "forbidden") for r in (outside, missing)]
    assert bodies[1]["required_role"] == "reader" and bodies[1]["required_root"] == MISSING
    masked = [{k: v.replace(b["required_root"], "ID") if isinstance(v, str) else v
               for k, v in b.items() if k not in ("required_root", "request_id")}
              for b in bodies]
    assert masked[0] == masked[1]  # nothing tells an id elsewhere from no id at all


def test_a_move_needs_admin_on_the_new_parent_too(world):
    library = world.app.extensions[EXTENSION].manager
    run = library.create(name="mover", scope="ORCHESTRATION", parent_id=world.project)
    client = world.app.test_client()
    url = f"/api/v1/instances/{run.id}/move"
    scoped = client.post(url, json={"parent_id": world.other},
                         headers={"Authorization": f"Bearer {world.tokens['admin']}"})
    body = assert_problem(scoped, 403, "forbidden")
    assert body["required_role"] == "admin" and body["required_root"] == world.other
    assert library.get(run.id).parent_id == world.project  # nothing moved
    served = client.post(url, json={"parent_id": world.other},
                         headers={"Authorization": f"Bearer {world.tokens['server']}"})
    assert served.status_code == 200 and served.get_json()["parent_id"] == world.other


def test_a_scoped_token_sees_its_subtree_and_not_above(world):
    client = world.app.test_client()
    reader = {"Authorization": f"Bearer {world.tokens['reader']}"}
    library = world.app.extensions[EXTENSION].manager
    run = library.create(name="web-run", scope="ORCHESTRATION", parent_id=world.project)
    library.create(name="billing-run", scope="ORCHESTRATION", parent_id=world.other)
    listed = client.get("/api/v1/instances", headers=reader).get_json()["items"]
    assert {i["name"] for i in listed} == {"website", "web-run"}
    ancestors = client.get(f"/api/v1/instances/{run.id}/ancestors",
                           headers=reader).get_json()["items"]
    assert [a["name"] for a in ancestors] == ["website"]
    events = client.get("/api/v1/events", headers=reader).get_json()["items"]
    assert {e["instance_id"] for e in events} == {world.project, run.id}
    parent = client.get(f"/api/v1/instances/{library.get(world.project).parent_id}",
                        headers=reader)
    assert assert_problem(parent, 403, "forbidden")["required_root"] is not None


def test_a_scoped_token_with_a_selector_sees_the_matches_in_its_subtree_only(world):
    client = world.app.test_client()
    reader = {"Authorization": f"Bearer {world.tokens['reader']}"}
    library = world.app.extensions[EXTENSION].manager
    for parent, name in ((world.project, "web"), (world.other, "billing")):
        for team in ("infra", "data"):
            library.create(name=f"{name}-{team}", scope="ORCHESTRATION", parent_id=parent,
                           labels={"team": team})
    listed = client.get("/api/v1/instances", query_string={"selector": "team=infra"},
                        headers=reader).get_json()["items"]
    assert [i["name"] for i in listed] == ["web-infra"]
    events = client.get("/api/v1/events", query_string={"selector": "team in (infra)"},
                        headers=reader).get_json()["items"]
    assert {e["instance_id"] for e in events} == {listed[0]["id"]}


def test_a_revoked_or_unknown_scoped_token_is_a_401(world):
    library = world.app.extensions[EXTENSION].manager
    [info] = [t for t in library.tokens.list() if t.role is READER]
    library.tokens.revoke(info.id)
    for secret in (world.tokens["reader"], "hgt_0123456789abcdef_" + "x" * 43):
        response = world.app.test_client().get(
            "/api/v1/instances", headers={"Authorization": f"Bearer {secret}"})
        assert_problem(response, 401, "unauthorized")
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_scoped_admin_purges_its_own_subtree_only(world):
    library = world.app.extensions[EXTENSION].manager
    runs = {}
    for name, parent in (("web-old", world.project), ("billing-old", world.other)):
        runs[name] = library.create(name=name, scope="ORCHESTRATION", parent_id=parent).id
        library.archive(runs[name])
    response = world.app.test_client().post(
        "/api/v1/instances/purge", json={"older_than_seconds": 0},
        headers={"Authorization": f"Bearer {world.tokens['admin']}"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert [i["id"] for i in body["purged"]] == [runs["web-old"]]
    assert world.other not in response.get_data(as_text=True)
    assert runs["billing-old"] not in response.get_data(as_text=True)
    assert library.get(runs["billing-old"]).status.value == "ARCHIVED"


def test_an_open_server_stays_open(make_app):
    client = make_app().test_client()
    assert client.get("/api/v1/instances").status_code == 200


def write_table(table: dict[tuple[str, str, str], int]) -> None:
    """The walk as markdown: one row per operation, one column per role and target."""
    roles = ("reader", "operator", "admin", "server")
    header = "| operation | needs | " + " | ".join(
        f"{r} {s}" for r in roles for s in SIDES) + " |"
    legend = ("Tokens of one PROJECT (reader, operator, admin) and HOPPER_API_TOKEN (server); "
              "inside: an instance in the PROJECT's subtree, outside: one in another PROJECT, "
              "missing: an id that exists nowhere. needs: instance = the path's id, parent = "
              "a create's parent_id, graph = the whole graph, listing = any token with the "
              "role, the answer cut to its subtree, subtree = a ?subtree= that must be "
              "inside.\n\n")
    lines = [header, "|" + "---|" * (2 + len(roles) * len(SIDES))]
    for operation in sorted(EXPECTED):
        role, kind = EXPECTED[operation]
        cells = [str(table[(operation, r, s)]) for r in roles for s in SIDES]
        lines.append(f"| `{operation}` | {role.label} ({kind}) | " + " | ".join(cells) + " |")
    text = legend + "\n".join(lines) + "\n"
    target = os.environ.get("HOPPER_ACCESS_TABLE")
    if target:
        Path(target).write_text(text)
    print(text)


def test_an_operation_without_a_declaration_fails_closed(make_app):
    app = make_app(HOPPER_API_TOKEN=ADMIN_TOKEN)
    extra = Blueprint("undeclared_extra", __name__, url_prefix="/api/v1/extra")
    access.guard(extra)

    @extra.route("")
    def served() -> str:
        return "served"

    app.register_blueprint(extra)
    with pytest.raises(RuntimeError, match=r"GET /api/v1/extra \(undeclared_extra.served\)"):
        access.check_declared(app)
    response = app.test_client().get("/api/v1/extra",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert_problem(response, 500, "internal-error")


def test_the_openapi_document_lists_403_for_every_guarded_operation(world):
    spec = world.app.test_client().get("/api/v1/openapi.json").get_json()
    for operation in EXPECTED:
        method, path = operation.split(" ", 1)
        assert "403" in spec["paths"][path][method.lower()]["responses"], operation


def test_an_open_server_warns_when_the_graph_holds_tokens(make_app, caplog):
    library = make_app().extensions[EXTENSION].manager
    g = library.create(name="g", scope="GLOBAL")
    library.tokens.create(g.id, "reader")
    with caplog.at_level("WARNING", logger="hopper_graph.api"):
        client = make_app().test_client()
    assert "HOPPER_API_TOKEN is not set" in caplog.text
    assert client.get("/api/v1/instances").status_code == 200  # still open, as documented


def test_metrics_are_the_whole_servers_behind_the_token(world):
    client = world.app.test_client()
    assert_problem(client.get("/metrics"), 401, "unauthorized")
    scoped = client.get("/metrics", headers={"Authorization": f"Bearer {world.tokens['admin']}"})
    assert "required_root" not in assert_problem(scoped, 403, "forbidden")
    server = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert server.status_code == 200 and b"hopper_http_requests_total" in server.data
