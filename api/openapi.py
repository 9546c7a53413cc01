"""The flask-smorest ``Api``: the OpenAPI document, its UIs, and problem+json everywhere.

Views list their problem responses and optional headers with :func:`documented`. The
document is served at ``/api/v1/openapi.json``, Swagger UI at ``/api/v1/docs`` and ReDoc
at ``/api/v1/redoc``. Both pages load their scripts from ``/api/v1/docs-assets/``, which serves
the files that the ``openapi-ui-bundles`` package ships, so they render with no internet.
Every error response in the document is an RFC 9457 problem, and flask-smorest's own error
handler renders problems too.
"""

from __future__ import annotations

import http
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from apispec import BasePlugin
from flask import Blueprint, Response, abort, make_response, send_from_directory
from flask_smorest import Api
from flask_smorest import Blueprint as ApiBlueprint
from flask_smorest.utils import prepare_response
from openapi_ui_bundles import redoc, swagger_ui
from werkzeug.exceptions import HTTPException

from api.errors import PROBLEM_MIMETYPE, handle_http_error
from api.etag import IF_MATCH
from api.schemas import ProblemSchema
from hopper_graph import __version__
from hopper_graph.rules import MAX_TEXT_LENGTH

F = TypeVar("F", bound=Callable[..., Any])

LOCATION_HEADER = {"description": "The URL of the new instance.", "schema": {"type": "string"}}
HEADER_PARAMETERS = "x-hopper-header-parameters"
"""Where :func:`documented` leaves an operation's header parameters for the spec plugin
below to append: ``doc(parameters=...)`` would replace the query parameters
flask-smorest documents from the operation's schema (DELETE lost ``force`` and ``reason``)."""
X_ACTOR = {"name": "X-Actor", "in": "header", "required": False,
           "schema": {"type": "string", "maxLength": MAX_TEXT_LENGTH},
           "description": "Who makes the change; recorded in the audit event. Longer than "
                          f"{MAX_TEXT_LENGTH} characters is a 422 naming the header."}


def documented(blp: ApiBlueprint, *codes: int, if_match: bool = False,
               actor: bool = False) -> Callable[[F], F]:
    """List the problem responses ``codes`` (plus 401 and 503, which any call may meet) and
    the optional If-Match and X-Actor headers in the operation's OpenAPI entry."""
    def decorator(func: F) -> F:
        for code in sorted({*codes, 401, 503}):
            func = blp.alt_response(code, response=http.HTTPStatus(code).name)(func)
        parameters = [p for p, on in ((IF_MATCH, if_match), (X_ACTOR, actor)) if on]
        return blp.doc(**{HEADER_PARAMETERS: parameters})(func) if parameters else func
    return decorator


ASSETS: dict[str, Path] = {"swagger-ui": swagger_ui.static_path, "redoc": redoc.static_path}
"""The upstream builds of Swagger UI and ReDoc 2 (``redoc.standalone.js``, the line
flask-smorest's ``<redoc spec-url>`` page is written for) that ``openapi-ui-bundles`` ships:
static files only, no dependency of its own."""
ASSETS_PATH = "/docs-assets"
"""Where the asset files are served, below ``/api/v1``."""
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:")
"""The docs pages load nothing from another origin. Inline code stays allowed: flask-smorest's
Swagger page starts the UI from an inline script and both UIs set inline styles."""

OPENAPI_CONFIG: dict[str, Any] = {
    "API_TITLE": "hopper_graph",
    "API_VERSION": __version__,
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    # Relative to the page (/api/v1/docs, /api/v1/redoc), so they still resolve when the
    # app is mounted below a prefix (SCRIPT_NAME).
    "OPENAPI_SWAGGER_UI_URL": f"{ASSETS_PATH[1:]}/swagger-ui/",
    "OPENAPI_REDOC_PATH": "/redoc",
    "OPENAPI_REDOC_URL": f"{ASSETS_PATH[1:]}/redoc/redoc.standalone.js",
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


def docs_assets_blueprint(url_prefix: str) -> Blueprint:
    """Serves Swagger UI's and ReDoc's files at ``url_prefix`` + ``ASSETS_PATH`` + ``/<ui>/``,
    with no token: like the pages that load them, they are documentation, not data."""
    blueprint = Blueprint("docs_assets", __name__, url_prefix=url_prefix)

    @blueprint.get(f"{ASSETS_PATH}/<ui>/<path:filename>")
    def asset(ui: str, filename: str) -> Response:
        if ui not in ASSETS:
            abort(404)
        return send_from_directory(ASSETS[ui], filename)

    return blueprint


def self_contained(page: str) -> Response:
    """``page`` with ``DOCS_CSP``: a browser then requests nothing off this server (ReDoc's
    footer would fetch Redocly's logo from a CDN; it hides the image when that fails)."""
    response = make_response(page)
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


class HeaderParameters(BasePlugin):  # type: ignore[misc]
    """Appends the headers an operation documents (``HEADER_PARAMETERS``) to the parameters
    flask-smorest generated for it, instead of replacing them."""

    def operation_helper(self, path: str | None = None,
                         operations: dict[str, Any] | None = None, **kwargs: Any) -> None:
        for operation in (operations or {}).values():
            headers = operation.pop(HEADER_PARAMETERS, None)
            if headers:
                operation.setdefault("parameters", []).extend(headers)


class HopperApi(Api):
    """flask-smorest's Api with problem+json error responses, documented and rendered."""

    ERROR_SCHEMA = ProblemSchema

    def _init_spec(self, **kwargs: Any) -> None:
        plugins = [*(kwargs.pop("extra_plugins", None) or ()), HeaderParameters()]
        super()._init_spec(extra_plugins=plugins, **kwargs)
        self.spec.components.security_scheme("bearerAuth", {
            "type": "http", "scheme": "bearer",
            "description": "Only enforced when the server sets HOPPER_API_TOKEN."})

    def _register_doc_blueprint(self) -> None:
        super()._register_doc_blueprint()
        prefix = self.config.get("OPENAPI_URL_PREFIX")
        if prefix is not None:
            self._app.register_blueprint(docs_assets_blueprint(prefix))

    def _openapi_swagger_ui(self) -> Response:
        return self_contained(super()._openapi_swagger_ui())

    def _openapi_redoc(self) -> Response:
        return self_contained(super()._openapi_redoc())

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
