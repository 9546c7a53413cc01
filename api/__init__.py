"""The REST API of hopper_graph: Flask blueprints over ``InstanceManager``.

``create_app()`` builds a complete app; ``init_app(app)`` adds the API to an app of your
own (set the ``HOPPER_*`` keys in its config first). The reference is docs/api.md.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from api import bookmarks, events, guards, health, instances, metrics, requestid
from api.errors import register_error_handlers
from api.extension import (
    EXTENSION,
    HopperGraphState,
    init_state,
    load_settings,
)
from api.openapi import HopperApi, openapi_config

blp = instances.blp
"""The /api/v1/instances blueprint."""
blueprints = (instances.blp, events.blp, health.blp)

__all__ = [
    "EXTENSION",
    "HopperApi",
    "HopperGraphState",
    "blp",
    "blueprints",
    "create_app",
    "init_app",
]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """An app serving the API. ``config`` overrides the environment's ``HOPPER_*``
    settings; ``HOPPER_DRIVER`` hands it an open driver to use (and not close)."""
    app = Flask(__name__)
    app.config.from_mapping(config or {})
    init_app(app)
    return app


def init_app(app: Flask) -> HopperApi:
    """Connect ``app`` to Neo4j and register the API, its OpenAPI document and errors."""
    load_settings(app)
    requestid.init_app(app)
    metrics.init_app(app)
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = app.config["HOPPER_MAX_CONTENT_LENGTH"]
    for key, value in openapi_config(bool(app.config["HOPPER_API_TOKEN"])).items():
        app.config.setdefault(key, value)
    init_state(app)
    api = HopperApi(app)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    register_error_handlers(app)
    bookmarks.init_app(app)
    guards.init_cors(app)
    return api
