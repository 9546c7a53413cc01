"""Liveness and readiness, outside /api/v1 and never behind the token."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from api import schemas as s
from api.errors import SchemaNotApplied
from api.extension import state
from hopper_graph import __version__, schema_version
from hopper_graph.schema import MIGRATIONS

blp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators.")


@blp.route("/health")
@blp.response(200, s.LivenessSchema)
@blp.doc(security=[])
def liveness() -> Any:
    """Liveness: the process answers (Neo4j is not asked)."""
    return {"status": "ok", "version": __version__}


@blp.route("/ready")
@blp.response(200, s.ReadinessSchema)
@blp.alt_response(503, response="SERVICE_UNAVAILABLE")
@blp.doc(security=[])
def readiness() -> Any:
    """Readiness: Neo4j answers and the schema is applied (503 otherwise)."""
    current = state()
    version = schema_version(current.driver, current.database)
    if version < MIGRATIONS[-1].version:
        raise SchemaNotApplied(f"The schema is at version {version}, not "
                               f"{MIGRATIONS[-1].version}: run `hopper-graph schema apply`.")
    return {"status": "ready", "neo4j": "ok", "schema_version": version}
