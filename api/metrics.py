"""``GET /metrics``: the server's Prometheus metrics, in the text format.

On unless ``HOPPER_METRICS=0`` (then there is no ``/metrics`` and nothing is measured);
behind the same token guard as ``/api/v1`` when the server has a token. The API adds to the
library's metrics (``hopper_graph.metrics``):

===========================================  =========  ================================
metric                                       type       labels
===========================================  =========  ================================
hopper_http_requests_total                   counter    method, route, status
hopper_http_request_duration_seconds         histogram  method, route
hopper_event_streams_open                    gauge      (summed over live workers)
hopper_events_pending                        gauge      read from Neo4j at each scrape
===========================================  =========  ================================

``route`` is the URL rule that matched (``/api/v1/instances/<uuid:instance_id>``), never
the path, so no id becomes a label; a request that matched none has route ``none``. A
method outside HTTP's usual ones is counted as ``other``. The duration runs until the
response's headers are ready (a stream's is its start).

Under gunicorn each worker has its own counters. With ``PROMETHEUS_MULTIPROC_DIR`` set
(``serve`` makes a fresh one), prometheus_client keeps them in files there and a scrape,
whichever worker answers, adds up every worker's, dead ones' counters included.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, g, request

from api import guards
from api.extension import manager
from hopper_graph import metrics as library_metrics
from hopper_graph.errors import HopperGraphError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PATH = "/metrics"


class _HttpMetrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter("hopper_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"])
        self.duration = Histogram("hopper_http_request_duration_seconds",
                                  "Time to answer an HTTP request (until its headers).",
                                  ["method", "route"])
        self.streams = Gauge("hopper_event_streams_open", "Event streams open.",
                             multiprocess_mode="livesum")


_http: _HttpMetrics | None = None


def init_app(app: Flask) -> None:
    """Measure ``app``'s requests and serve ``/metrics``, unless ``HOPPER_METRICS`` is off."""
    global _http
    if not app.config["HOPPER_METRICS"]:
        return
    library_metrics.enable()
    if _http is None:
        _http = _HttpMetrics()
    app.before_request(_start)
    app.after_request(_count)
    app.register_blueprint(blueprint())


def blueprint() -> Blueprint:
    blp = Blueprint("metrics", __name__)
    blp.before_request(guards.require_token)
    blp.add_url_rule(PATH, "metrics", scrape, methods=["GET"])
    return blp


def _start() -> None:
    g.hopper_started = time.perf_counter()


def _count(response: Response) -> Response:
    if _http is None:
        return response
    method = request.method if request.method in METHODS else "other"
    route = request.url_rule.rule if request.url_rule is not None else "none"
    _http.requests.labels(method, route, str(response.status_code)).inc()
    started = g.get("hopper_started")
    if started is not None:
        _http.duration.labels(method, route).observe(time.perf_counter() - started)
    return response


def stream_opened() -> None:
    if _http is not None:
        _http.streams.inc()


def stream_closed() -> None:
    if _http is not None:
        _http.streams.dec()


class _Pending:
    """``hopper_events_pending``, read from Neo4j when scraped (omitted if it cannot be)."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            pending = manager().pending_events()
        except HopperGraphError:  # Neo4j unavailable: the other metrics still count
            return
        yield GaugeMetricFamily("hopper_events_pending",
                                "Committed events waiting for a seq (the feed's backlog).",
                                value=pending)


class _Process:
    """This process's registry as a collector (when workers do not share files)."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client import REGISTRY

        yield from REGISTRY.collect()


def scrape() -> Response:
    """Every metric, of every worker, in Prometheus' text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        registry.register(_Process())  # type: ignore[arg-type]
    registry.register(_Pending())  # type: ignore[arg-type]
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
