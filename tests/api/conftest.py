"""Fixtures for the REST API: the default app (tests/conftest.py's make_app), its client,
and a hierarchy built through it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

Json = dict[str, Any]


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Hierarchy:
    """Builds instances through the API, asserting each call succeeds."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def create(self, **body: Any) -> Json:
        response = self.client.post("/api/v1/instances", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    def global_(self, **config: Any) -> Json:
        return self.create(name="global", scope="GLOBAL", config=config or None)

    def project(self, parent: Json, name: str, **body: Any) -> Json:
        body.setdefault("project_id", name)
        return self.create(name=name, scope="PROJECT", parent_id=parent["id"], **body)

    def run(self, parent: Json, name: str, **body: Any) -> Json:
        return self.create(name=name, scope="ORCHESTRATION", parent_id=parent["id"], **body)

    def event(self, instance: Json, event: str, **kwargs: Any) -> Json:
        response = self.client.post(f"/api/v1/instances/{instance['id']}/{event}", **kwargs)
        assert response.status_code == 200, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    def chain(self) -> tuple[Json, Json, Json]:
        """GLOBAL -> PROJECT -> ORCHESTRATION."""
        g = self.global_()
        p = self.project(g, "alpha")
        return g, p, self.run(p, "alpha-run-1")


@pytest.fixture
def h(client: FlaskClient) -> Hierarchy:
    return Hierarchy(client)


def assert_problem(response: Any, status: int, code: str | None = None) -> Json:
    """The response is an RFC 9457 problem with this status (and code), and leaks nothing."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status
    assert {"type", "title", "detail", "code"} <= body.keys()
    assert body["type"] == f"urn:hopper-graph:problem:{body['code']}"
    text = response.get_data(as_text=True)
    for leak in ("Traceback", 'File "', "MATCH (", "neo4j.exceptions"):
        assert leak not in text
    if code is not None:
        assert body["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]  # every error is traceable
    return body  # type: ignore[no-any-return]


# `hopper-graph serve` in a subprocess, for the tests about gunicorn (tests/api/test_serve.py)
from tests.api.serve_process import serve_process  # noqa: E402, F401
