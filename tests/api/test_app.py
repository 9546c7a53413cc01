"""The app factory, settings, probes, CORS and the OpenAPI document."""

from __future__ import annotations

import pytest
from flask import Flask
from openapi_spec_validator import validate

import api
from api import EXTENSION, create_app
from hopper_graph.errors import ConfigurationError
from tests.api.conftest import assert_problem

METHODS = ("get", "post", "patch", "delete")


def test_without_a_uri_or_driver_create_app_says_what_to_set(monkeypatch):
    monkeypatch.delenv("HOPPER_NEO4J_URI", raising=False)
    with pytest.raises(ConfigurationError, match="HOPPER_NEO4J_URI"):
        create_app()


def test_bad_settings_are_refused(make_app):
    with pytest.raises(ConfigurationError, match="HOPPER_NEO4J_TIMEOUT"):
        make_app(HOPPER_NEO4J_TIMEOUT="soon")


def test_an_app_connects_from_the_environment_and_closes_its_driver(
        neo4j_source, clean_graph, monkeypatch):
    settings = neo4j_source.settings
    for key, value in (("HOPPER_NEO4J_URI", settings.uri), ("HOPPER_NEO4J_USER", settings.user),
                       ("HOPPER_NEO4J_PASSWORD", settings.password),
                       ("HOPPER_NEO4J_DATABASE", settings.database),
                       ("HOPPER_API_TOKEN", "from-env"), ("HOPPER_APPLY_SCHEMA", "true")):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    app = create_app({"TESTING": True})
    state = app.extensions[EXTENSION]
    assert state.owns_driver and app.config["HOPPER_API_TOKEN"] == "from-env"
    client = app.test_client()
    assert client.get("/ready").get_json()["status"] == "ready"
    assert client.get("/api/v1/instances",
                      headers={"Authorization": "Bearer from-env"}).status_code == 200
    driver = state.driver
    state.close()
    state.close()  # twice is harmless
    assert not state.owns_driver
    with pytest.raises(Exception):  # noqa: B017 - the driver says "closed" its own way
        driver.verify_connectivity()


def test_a_given_driver_is_not_closed(make_app, clean_graph):
    app = make_app(HOPPER_APPLY_SCHEMA=True)
    app.extensions[EXTENSION].close()
    clean_graph.verify_connectivity()


def test_health_and_ready(client):
    assert client.get("/health").get_json()["status"] == "ok"
    ready = client.get("/ready").get_json()
    assert ready["status"] == "ready" and ready["schema_version"] >= 1


def test_the_api_mounts_on_an_app_of_your_own(clean_graph, database):
    app = Flask("host")
    app.config.update(HOPPER_DRIVER=clean_graph, HOPPER_NEO4J_DATABASE=database,
                      HOPPER_APPLY_SCHEMA=False)

    @app.route("/")
    def home():
        return "host"

    api.init_app(app)
    client = app.test_client()
    assert client.get("/").get_data(as_text=True) == "host"
    assert client.get("/api/v1/instances").status_code == 200
    app.extensions[EXTENSION].close()


def test_cors_is_off_unless_origins_are_set(client, make_app):
    origin = {"Origin": "https://ui.example"}
    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/instances",
                                                           headers=origin).headers
    cors = make_app(HOPPER_CORS_ORIGINS="https://ui.example, https://other.example",
                    HOPPER_API_TOKEN="t").test_client()
    response = cors.get("/api/v1/instances", headers={**origin, "Authorization": "Bearer t"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]
    preflight = cors.options("/api/v1/instances", headers={
        **origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, If-Match"})
    assert preflight.status_code == 200
    assert "If-Match" in preflight.headers["Access-Control-Allow-Headers"]
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    denied = cors.get("/api/v1/instances", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in denied.headers
    assert_problem(denied, 401)


def test_the_openapi_document_validates_and_documents_every_operation(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    paths = spec["paths"]
    for path in ("/api/v1/instances/global", "/api/v1/instances/projects/{project_id}",
                 "/api/v1/instances/projects/{project_id}/orchestrations",
                 "/api/v1/instances/{instance_id}/tree", "/api/v1/events", "/health", "/ready"):
        assert path in paths
    for event in ("start", "stop", "pause", "resume", "archive"):
        assert f"/api/v1/instances/{{instance_id}}/{event}" in paths
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for name, response_doc in spec["components"]["responses"].items():
        assert response_doc["content"] == problem, name
    for path, item in paths.items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            assert operation.get("summary"), (method, path)
            errors = {code for code in operation["responses"] if code[0] in "45"}
            assert "default" in operation["responses"], (method, path)
            if path.startswith("/api/v1"):
                assert {"401", "503"} <= errors, (method, path)
            if "{instance_id}" in path:
                assert "404" in errors, (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= errors, (method, path)
    assert "bearerAuth" in spec["components"]["securitySchemes"]
    assert "security" not in spec  # no token configured: nothing to send


def test_the_document_requires_the_token_only_when_one_is_set(make_app):
    token = "s3cret"
    spec = make_app(HOPPER_API_TOKEN=token).test_client().get("/api/v1/openapi.json").get_json()
    validate(spec)
    assert spec["security"] == [{"bearerAuth": []}]
    for path in ("/health", "/ready"):
        assert spec["paths"][path]["get"]["security"] == []


def test_the_browsable_docs_are_served(client):
    for path in ("/api/v1/docs", "/api/v1/redoc"):
        response = client.get(path)
        assert response.status_code == 200 and "/api/v1/openapi.json" in response.get_data(
            as_text=True)


def test_documented_headers_join_the_query_parameters_instead_of_replacing_them(client):
    """DELETE takes ?force= and ?reason= and the If-Match and X-Actor headers: the
    document lists all four (listing the headers used to drop the query parameters)."""
    spec = client.get("/api/v1/openapi.json").get_json()
    delete = spec["paths"]["/api/v1/instances/{instance_id}"]["delete"]
    assert {(p["name"], p["in"]) for p in delete["parameters"]} >= {
        ("force", "query"), ("reason", "query"), ("If-Match", "header"),
        ("X-Actor", "header")}
    assert not [key for key in delete if key.startswith("x-hopper")]


def test_cors_for_any_origin_answers_with_a_wildcard_and_only_to_an_origin(make_app):
    client = make_app(HOPPER_CORS_ORIGINS="*").test_client()
    response = client.get("/api/v1/instances", headers={"Origin": "https://any.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Location" in response.headers["Access-Control-Expose-Headers"]
    assert not any(k.lower().startswith("access-control-")
                   for k, _ in client.get("/api/v1/instances").headers)
