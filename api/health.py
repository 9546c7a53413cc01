"""Liveness and readiness, outside /api/v1 and never behind the token.

Readiness is what load balancers poll, so it answers within ``READY_TIMEOUT`` whatever
Neo4j does: one attempt to reach it, no retry (``graph.verify``), run by a thread of its
own that the request waits for at most that long. While one check is under way, every
``/ready`` waits for that one rather than starting another, so a Neo4j that hangs costs one
thread per worker, not one per probe.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flask import Flask, current_app
from flask_smorest import Blueprint

from api import schemas as s
from api.errors import SchemaNotApplied
from api.extension import state
from hopper_graph import __version__, schema_version
from hopper_graph.errors import DatabaseUnavailable
from hopper_graph.graph import verify
from hopper_graph.schema import MIGRATIONS

READY_TIMEOUT = 1.0
"""Seconds ``/ready`` waits for Neo4j before it answers 503 (``reason: timed-out``)."""

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
    """Readiness: Neo4j answers and the schema is applied (503 otherwise, within a
    second, with the cause as `reason`)."""
    try:
        version = _probe(current_app._get_current_object()).result(
            timeout=READY_TIMEOUT)
    except FutureTimeout:
        raise DatabaseUnavailable(f"Neo4j did not answer within {READY_TIMEOUT:g} s",
                                  reason="timed-out") from None
    if version < MIGRATIONS[-1].version:
        raise SchemaNotApplied(f"The schema is at version {version}, not "
                               f"{MIGRATIONS[-1].version}: run `hopper-graph schema apply`.")
    return {"status": "ready", "neo4j": "ok", "schema_version": version}


def _check() -> int:
    """Reach Neo4j once (no retry) and read the schema's version."""
    current = state()
    verify(current.driver)
    return schema_version(current.driver, current.database)


class _Prober:
    """One readiness check at a time for an app, run by a thread of its own."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._running: Future[int] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hopper-ready")

    def check(self) -> Future[int]:
        """The check under way, or a new one."""
        with self._lock:
            if self._running is None or self._running.done():
                self._running = self._pool.submit(self._run)
            return self._running

    def _run(self) -> int:
        with self.app.app_context():
            return _check()


def _probe(app: Flask) -> Future[int]:
    with _PROBERS_LOCK:
        prober: _Prober | None = app.extensions.get("hopper_graph_ready")
        if prober is None:
            prober = app.extensions["hopper_graph_ready"] = _Prober(app)
    return prober.check()


_PROBERS_LOCK = threading.Lock()
