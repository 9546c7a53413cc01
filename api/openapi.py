"""The flask-smorest ``Api``: the OpenAPI document, its UIs, and problem+json everywhere.

The document is served at ``/api/v1/openapi.json``, Swagger UI at ``/api/v1/docs`` and ReDoc
at ``/api/v1/redoc`` (their scripts load from a CDN). Every error response in it is an RFC
9457 problem, and flask-smorest's own error handler renders problems too.
"""

from __future__ import annotations

import http
from typing import Any

from flask import Response
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from api.errors import PROBLEM_MIMETYPE, handle_http_error
from api.schemas import ProblemSchema
from hopper_graph import __version__

OPENAPI_CONFIG: dict[str, Any] = {
    "API_TITLE": "hopper_graph",
    "API_VERSION": __version__,
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/",
    "OPENAPI_REDOC_PATH": "/redoc",
    "OPENAPI_REDOC_URL": "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js",
    "API_SPEC_OPTIONS": {
        "info": {"description": (
            "The instance hierarchy of Hopper (GLOBAL, PROJECT, ORCHESTRATION) in Neo4j. "
            "Errors are application/problem+json (RFC 9457). When the server has an API "
            "token, every /api/v1 call needs `Authorization: Bearer <token>`.")},
    },
}
"""The defaults ``init_app`` puts in the app's config; ``openapi_config`` adds the security
requirement when the app has a token."""
SECURITY = [{"bearerAuth": []}]


def openapi_config(token_required: bool) -> dict[str, Any]:
    """OPENAPI_CONFIG for an app: the document declares ``bearerAuth`` as a requirement of
    every operation only when the server enforces a token (the probes opt out)."""
    config = dict(OPENAPI_CONFIG)
    if token_required:
        config["API_SPEC_OPTIONS"] = {**config["API_SPEC_OPTIONS"], "security": SECURITY}
    return config


class HopperApi(Api):
    """flask-smorest's Api with problem+json error responses, documented and rendered."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, **kwargs: Any) -> None:
        super()._init_spec(**kwargs)
        self.spec.components.security_scheme("bearerAuth", {
            "type": "http", "scheme": "bearer",
            "description": "Only enforced when the server sets HOPPER_API_TOKEN."})

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            if status < 400:
                continue
            response = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Unexpected error", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:
        return handle_http_error(error)
