"""What ``serve`` sets up so an operator can watch the server: its log format, for the
API's lines and gunicorn's own (``HOPPER_LOG_FORMAT``, ``HOPPER_LOG_LEVEL``).

gunicorn writes its access and error lines through its own logger; ``HopperGunicornLogger``
gives them the same format as the rest, and the access line the request's ``X-Request-ID``
(the response header the API always sets).
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn import glogging

from hopper_graph import logs

ACCESS_LOG_FORMAT = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(L)ss '
    'request_id=%({x-request-id}o)s')
"""gunicorn's default access line, plus the duration and the request id."""


def log_settings() -> tuple[str, int]:
    """(format, level) from ``HOPPER_LOG_FORMAT`` and ``HOPPER_LOG_LEVEL``."""
    return (logs.log_format(os.environ.get("HOPPER_LOG_FORMAT")),
            logs.log_level(os.environ.get("HOPPER_LOG_LEVEL")))


def configure_logging() -> str:
    """The root logger's one handler, in the chosen format; the format."""
    fmt, level = log_settings()
    logs.configure(fmt, level)
    return fmt


class HopperGunicornLogger(glogging.Logger):
    """gunicorn's logger, its lines in ``HOPPER_LOG_FORMAT``: with ``json``, one object per
    line (the access line's method, path, status, duration and request id as members)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if log_settings()[0] != "json":
            return
        for log, formatter in ((self.error_log, logs.json_formatter()),
                               (self.access_log, logs.AccessJsonFormatter())):
            for handler in log.handlers:
                handler.setFormatter(formatter)


def gunicorn_options() -> dict[str, Any]:
    """The gunicorn settings ``serve`` adds for the above."""
    return {"logger_class": HopperGunicornLogger, "access_log_format": ACCESS_LOG_FORMAT}
