"""gunicorn's logger for ``serve``, in ``HOPPER_LOG_FORMAT`` (see ``observe``)."""

from __future__ import annotations

from typing import Any

from gunicorn import glogging

from hopper_graph import logs
from hopper_graph.cli.observe import log_settings


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
