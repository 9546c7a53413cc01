"""What ``serve`` sets up so an operator can watch the server: its log format, for the
API's lines and gunicorn's own (``HOPPER_LOG_FORMAT``, ``HOPPER_LOG_LEVEL``), and the
shared store of the workers' metrics (``HOPPER_METRICS``).

Metrics: gunicorn's workers are separate processes, each counting its own requests. Before
the first worker starts (``on_starting``), a fresh temporary directory becomes
``PROMETHEUS_MULTIPROC_DIR``, which the workers inherit: prometheus_client then keeps every
worker's values in files there, and ``/metrics`` adds them up. When a worker exits
(``child_exit``) its live gauges (open streams) are dropped; its counters stay in the sums.
The directory is removed when the server stops (``on_exit``).

gunicorn writes its access and error lines through its own logger; ``LOGGER_CLASS`` (in
``gunicorn_logger``, which imports gunicorn, named so that the CLI does not load gunicorn
until ``serve`` runs) gives them the same format as the rest, and the access line the
request's ``X-Request-ID`` (the response header the API always sets).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from hopper_graph import logs

ACCESS_LOG_FORMAT = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)ss '
    'request_id=%({x-request-id}o)s')
"""gunicorn's default access line, plus the duration and the request id."""
LOGGER_CLASS = "hopper_graph.cli.gunicorn_logger.HopperGunicornLogger"


def log_settings() -> tuple[str, int]:
    """(format, level) from ``HOPPER_LOG_FORMAT`` and ``HOPPER_LOG_LEVEL``."""
    return (logs.log_format(os.environ.get("HOPPER_LOG_FORMAT")),
            logs.log_level(os.environ.get("HOPPER_LOG_LEVEL")))


def configure_logging() -> str:
    """The root logger's one handler, in the chosen format; the format."""
    fmt, level = log_settings()
    logs.configure(fmt, level)
    return fmt


def gunicorn_options() -> dict[str, Any]:
    """The gunicorn settings ``serve`` adds for the above."""
    return {"logger_class": LOGGER_CLASS, "access_log_format": ACCESS_LOG_FORMAT,
            "on_starting": on_starting, "child_exit": child_exit, "on_exit": on_exit}


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_on() -> bool:
    """``HOPPER_METRICS``: on unless 0, false, no or off."""
    value = os.environ.get("HOPPER_METRICS", "1").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def on_starting(server: Any = None) -> None:
    """In the master, before any worker: a fresh, empty store for the workers' metrics."""
    if metrics_on():
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="hopper-metrics-")


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: drop its live gauges from the sums."""
    if metrics_on() and os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any = None) -> None:
    """The server stops: remove the store ``on_starting`` made."""
    path = os.environ.get(MULTIPROC_ENV, "")
    if metrics_on() and os.path.basename(path).startswith("hopper-metrics-"):
        shutil.rmtree(path, ignore_errors=True)

