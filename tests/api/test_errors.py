"""Every error is application/problem+json with the right status, and leaks nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import neo4j.exceptions
import pytest

from api import EXTENSION, create_app
from hopper_graph.errors import ConfigurationError, TemplateError
from tests.api.conftest import assert_problem

URL = "/api/v1/instances"
NOBODY = "00000000-0000-4000-8000-000000000000"


def test_malformed_json_is_400(client):
    body = assert_problem(client.post(URL, data='{"name": ', content_type="application/json"),
                          400, "malformed-json")
    assert "not valid JSON" in body["detail"]
    deep = "[" * 100_000 + "]" * 100_000
    assert_problem(client.post(URL, data=deep, content_type="application/json"), 400,
                   "malformed-json")
    assert_problem(client.post(URL, data=b"\xff\xfe", content_type="application/json"), 400)


def test_a_body_in_another_encoding_is_400_saying_what_is_wrong_with_the_body(client, h):
    """A BOM or UTF-16 used to read as 400 invalid-query, "Some query parameters are
    invalid": the body is named, and what is wrong with it."""
    g = h.global_()
    document = json.dumps({"name": "café", "scope": "PROJECT", "parent_id": g["id"],
                           "project_id": "c"}, ensure_ascii=False)
    for data, says in ((b"\xef\xbb\xbf" + document.encode(), "byte order mark"),
                       (document.encode("utf-16"), "not UTF-8"),
                       (document.encode("utf-16-le"), "not UTF-8"),
                       (document.encode("utf-32"), "not UTF-8")):
        body = assert_problem(client.post(URL, data=data, content_type="application/json"),
                              400, "malformed-json")
        assert says in body["detail"] and "body" in body["detail"], body
    assert client.get(f"{URL}?scope=PROJECT").get_json()["items"] == []
    created = client.post(URL, data=document.encode(), content_type="application/json")
    assert created.status_code == 201 and created.get_json()["name"] == "café"


def test_a_body_that_is_not_json_is_415(client, h):
    form = "application/x-www-form-urlencoded"
    assert_problem(client.post(URL, data="name=x", content_type=form), 415,
                   "unsupported-media-type")
    assert_problem(client.post(URL, data="hello", content_type="text/plain"), 415)
    g = h.global_()
    assert_problem(client.post(f"{URL}/{g['id']}/start", data="x"), 415)
    merge_patch = client.patch(f"{URL}/{g['id']}", data='{"name": "n"}',
                               content_type="application/merge-patch+json")
    assert merge_patch.status_code == 200


def test_a_body_over_the_limit_is_413(make_app):
    client = make_app().test_client()
    big = '{"name": "' + "x" * (1024 * 1024) + '", "scope": "GLOBAL"}'
    body = assert_problem(client.post(URL, data=big, content_type="application/json"), 413,
                          "content-too-large")
    assert "1048576" in body["detail"]
    small = make_app(HOPPER_MAX_CONTENT_LENGTH=100).test_client()
    assert_problem(small.post(URL, json={"name": "x" * 200, "scope": "GLOBAL"}), 413)
    assert small.post(URL, json={"name": "g", "scope": "GLOBAL"}).status_code == 201


def test_token_on_every_api_call_but_not_health(make_app):
    client = make_app(HOPPER_API_TOKEN="s3cret").test_client()
    missing = client.get(URL)
    assert_problem(missing, 401, "unauthorized")
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="hopper-graph"'
    wrong = client.get(URL, headers={"Authorization": "Bearer nope"})
    assert_problem(wrong, 401)
    assert 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    assert_problem(client.get(URL, headers={"Authorization": "Basic czNjcmV0"}), 401)
    assert_problem(client.post(URL, json={"name": "g", "scope": "GLOBAL"}), 401)
    assert_problem(client.get("/api/v1/events"), 401)
    assert_problem(client.get(f"{URL}/{NOBODY}"), 401)  # no hint whether it exists
    ok = {"Authorization": "Bearer s3cret"}
    assert client.get(URL, headers=ok).status_code == 200
    assert client.get("/api/v1/events", headers=ok).status_code == 200
    for open_path in ("/health", "/ready", "/api/v1/openapi.json"):
        assert client.get(open_path).status_code == 200


def test_without_a_token_the_api_is_open(client):
    assert client.get(URL).status_code == 200


def test_unknown_instance_and_unknown_url_are_404(client):
    body = assert_problem(client.get(f"{URL}/{NOBODY}"), 404, "not-found")
    assert body["id"] == NOBODY and body["instance"] == f"{URL}/{NOBODY}"
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not-found")
    assert_problem(client.patch(f"{URL}/{NOBODY}", json={"name": "x"}), 404)
    assert_problem(client.delete(f"{URL}/{NOBODY}"), 404)


def test_method_not_allowed_is_405_with_allow(client):
    response = client.put(URL, json={})
    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["Allow"]


def test_conflicts_are_409(client, h):
    g = h.global_(limits={"max_child_instances": 2})
    body = assert_problem(client.post(URL, json={"name": "other", "scope": "GLOBAL"}), 409,
                          "global-already-exists")
    assert body["title"] == "A GLOBAL instance already exists"
    alpha = h.project(g, "alpha")
    body = assert_problem(client.post(URL, json={"name": "alpha", "scope": "PROJECT",
                                                 "parent_id": g["id"], "project_id": "x"}),
                          409, "duplicate-name")
    assert body["errors"] == {"name": [f"already taken in scope PROJECT by instance "
                                       f"{alpha['id']}"]}
    h.project(g, "beta")
    body = assert_problem(client.post(URL, json={"name": "gamma", "scope": "PROJECT",
                                                 "parent_id": g["id"], "project_id": "c"}),
                          409, "limit-exceeded")
    assert body["limit"] == "limits.max_child_instances" and body["value"] == 2


def test_concurrent_modification_without_if_match_is_409(client, h, monkeypatch, app):
    from hopper_graph import ConcurrentModification

    g = h.global_()
    manager = app.extensions[EXTENSION].manager

    def raced(*args, **kwargs):
        raise ConcurrentModification("instance moved on", id=g["id"], version=2,
                                     expected_version=1)

    monkeypatch.setattr(manager, "transition", raced)
    assert_problem(client.post(f"{URL}/{g['id']}/start"), 409, "concurrent-modification")
    assert_problem(client.post(f"{URL}/{g['id']}/start", headers={"If-Match": '"1"'}), 412,
                   "concurrent-modification")


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"name", "scope"}),
    ({"name": "", "scope": "GLOBAL"}, {"name"}),
    ({"name": "g", "scope": "WORLD"}, {"scope"}),
    ({"name": "g", "scope": "GLOBAL", "instance_type": "FOREVER"}, {"instance_type"}),
    ({"name": "g", "scope": "GLOBAL", "parent_id": "not-a-uuid"}, {"parent_id"}),
    ({"name": "g", "scope": "GLOBAL", "metadata": []}, {"metadata"}),
    ({"name": "g", "scope": "GLOBAL", "extra": 1}, {"extra"}),
])
def test_invalid_fields_are_422_keyed_by_field(client, body, fields):
    problem = assert_problem(client.post(URL, json=body), 422, "validation-error")
    assert set(problem["errors"]) == fields


def test_library_validation_is_422_keyed_by_field_path(client, h):
    g = h.global_()
    body = assert_problem(client.post(URL, json={
        "name": "p", "scope": "PROJECT", "parent_id": NOBODY, "project_id": "p"}), 422,
        "scope-rule-violation")
    assert body["errors"] == {"parent_id": ["no instance with this id"]}
    body = assert_problem(client.post(URL, json={"name": "p", "scope": "PROJECT",
                                                 "parent_id": g["id"]}), 422)
    assert set(body["errors"]) == {"project_id"}
    body = assert_problem(client.post(URL, json={
        "name": "p", "scope": "PROJECT", "parent_id": g["id"], "project_id": "p",
        "config": {"delegation": {"orchestration_threshold": "many"}, "colour": 1}}), 422,
        "validation-error")
    assert set(body["errors"]) == {"config.delegation.orchestration_threshold", "config.colour"}
    body = assert_problem(client.post(URL, json={"name": "r", "scope": "ORCHESTRATION",
                                                 "parent_id": g["id"]}), 422)
    assert set(body["errors"]) == {"parent_id"}


@pytest.mark.parametrize("error", [RuntimeError, ConfigurationError, TemplateError])
def test_an_unexpected_error_is_a_generic_500(client, app, monkeypatch, caplog, error):
    """A bug, or the server's own setup (a broken template met mid-request), is the
    server's fault: 500, logged, with nothing of it in the body."""
    manager = app.extensions[EXTENSION].manager

    def broken(*args, **kwargs):
        if error is TemplateError:
            raise TemplateError(Path("/etc/hunter2.yaml"), "invalid template")
        raise error("MATCH (n:Secret) password=hunter2")

    monkeypatch.setattr(manager, "list", broken)
    body = assert_problem(client.get(URL), 500, "internal-error")
    assert "hunter2" not in str(body) and body["detail"].startswith("An unexpected error")
    assert "hunter2" in caplog.text  # logged on the server side


def test_an_unreachable_neo4j_is_a_quick_503(monkeypatch):
    for key in ("HOPPER_NEO4J_URI", "HOPPER_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    app = create_app({"HOPPER_NEO4J_URI": "bolt://127.0.0.1:1", "HOPPER_NEO4J_TIMEOUT": 0.5,
                      "HOPPER_APPLY_SCHEMA": False, "TESTING": True})
    try:
        client = app.test_client()
        started = time.monotonic()
        response = client.get(URL)
        body = assert_problem(response, 503, "database-unavailable")
        assert response.headers["Retry-After"] and "Neo4j" in body["detail"]
        assert_problem(client.post(URL, json={"name": "g", "scope": "GLOBAL"}), 503)
        assert_problem(client.get("/ready"), 503, "database-unavailable")
        assert client.get("/health").status_code == 200
        assert time.monotonic() - started < 10
    finally:
        app.extensions[EXTENSION].close()


def test_a_20000_character_project_id_is_422_naming_the_field(client, h):
    """Neo4j refuses to index a string that long; the schema bounds it first."""
    g = h.global_()
    long_id = "p" * 20_000
    body = assert_problem(client.post(URL, json={
        "name": "p", "scope": "PROJECT", "parent_id": g["id"], "project_id": long_id}), 422,
        "validation-error")
    assert set(body["errors"]) == {"project_id"}
    assert "255" in body["errors"]["project_id"][0]
    assert len(client.get(URL).get_json()["items"]) == 1  # nothing was written
    body = assert_problem(client.get(URL, query_string={"project_id": long_id}), 400,
                          "invalid-query")
    assert set(body["errors"]) == {"project_id"}
    at_the_bound = h.project(g, "q", project_id="q" * 255)
    assert at_the_bound["project_id"] == "q" * 255
    found = client.get(f"{URL}/projects/{long_id}")
    assert found.status_code in (200, 404), found.get_data(as_text=True)[:200]
    assert found.status_code == 404 or found.get_json()["items"] == []


@pytest.mark.parametrize("error", [
    neo4j.exceptions.DatabaseError("Property value is too large to index into this "
                                   "particular index. MATCH (n:HopperInstance) secret-id"),
    neo4j.exceptions.ClientError("Neo.ClientError.Statement.SyntaxError in MATCH (n"),
    neo4j.exceptions.ConstraintError("Node(42) already exists with label `HopperInstance`"),
])
def test_a_raw_database_error_is_a_500_naming_no_internals(client, app, monkeypatch, error):
    manager = app.extensions[EXTENSION].manager

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(manager, "create", broken)
    response = client.post(URL, json={"name": "g", "scope": "GLOBAL"})
    body = assert_problem(response, 500, "internal-error")
    text = response.get_data(as_text=True)
    for internal in ("index", "HopperInstance", "secret-id", "Neo", "Node(42)", "MATCH"):
        assert internal not in text
    assert set(body) == {"type", "title", "status", "detail", "code", "instance", "request_id"}


def test_a_second_project_for_a_project_id_is_409_naming_the_existing_one(client, h):
    g = h.global_()
    first = h.project(g, "alpha")
    response = client.post("/api/v1/instances", json={
        "name": "alpha-again", "scope": "PROJECT", "parent_id": g["id"], "project_id": "alpha"})
    problem = assert_problem(response, 409, "duplicate-project")
    assert problem["existing_id"] == first["id"]
    assert problem["project_id"] == "alpha"
    assert first["id"] in problem["detail"] and "alpha" in problem["detail"]
    assert problem["errors"] == {"project_id": [f"already has a PROJECT instance: {first['id']}"]}
