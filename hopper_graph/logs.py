"""The server's log lines: text or one JSON object per line, each carrying its request id.

``REQUEST_ID`` holds the id of the request the current thread (context) serves; the API
sets it when a request starts and clears it when the request ends, and
:class:`RequestIdFilter`, on every handler :func:`configure` installs, copies it onto each
record as ``request_id`` (``None`` outside a request). The library itself never sets it and
knows nothing of HTTP.

``HOPPER_LOG_FORMAT=json`` (:func:`configure` with ``"json"``) writes each record as one
JSON object: ``time``, ``level``, ``logger``, ``message``, ``process``, ``request_id`` and
whatever the caller passed in ``extra=`` (the lifecycle's ``instance_id``, ``event``,
``from_status``, ``to_status``, ``actor``, ``cause``). :class:`AccessJsonFormatter` does the
same for gunicorn's access lines, from the request's fields gunicorn hands its logger.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any, ClassVar

from pythonjsonlogger.json import JsonFormatter

from hopper_graph.errors import ConfigurationError

REQUEST_ID: ContextVar[str | None] = ContextVar("hopper_request_id", default=None)
"""The id of the request being served in this context, if any."""
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d %(request_id)s"
JSON_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id``: the one in ``REQUEST_ID`` (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAMED)


def text_formatter() -> logging.Formatter:
    return logging.Formatter(TEXT_FORMAT)


class AccessJsonFormatter(JsonFormatter):
    """gunicorn's access line as JSON: gunicorn logs it with its request fields ("atoms")
    as the record's arguments; the useful ones become members."""

    ATOMS: ClassVar[dict[str, str]] = {
        "m": "method", "U": "path", "q": "query", "s": "status", "L": "duration_seconds",
        "h": "remote_addr", "b": "bytes", "{x-request-id}o": "request_id"}

    def __init__(self) -> None:
        super().__init__(JSON_FIELDS, rename_fields=JSON_RENAMED)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        atoms = record.args if isinstance(record.args, dict) else {}
        for atom, name in self.ATOMS.items():
            if atoms.get(atom) not in (None, "", "-"):
                log_data[name] = atoms[atom]
        if "duration_seconds" in log_data:
            log_data["duration_seconds"] = float(log_data["duration_seconds"])
        if "status" in log_data:
            log_data["status"] = int(log_data["status"])


def log_format(value: str | None) -> str:
    """``HOPPER_LOG_FORMAT``: ``text`` (the default) or ``json``."""
    chosen = (value or "text").strip().lower()
    if chosen not in FORMATS:
        raise ConfigurationError(f"HOPPER_LOG_FORMAT={value!r} is not valid: text or json")
    return chosen


def log_level(value: str | None) -> int:
    """``HOPPER_LOG_LEVEL``: WARNING by default; INFO adds the lifecycle's events."""
    chosen = (value or "WARNING").strip().upper()
    if chosen not in LEVELS:
        raise ConfigurationError(
            f"HOPPER_LOG_LEVEL={value!r} is not valid: one of {', '.join(LEVELS)}")
    return int(getattr(logging, chosen))


def formatter(fmt: str) -> logging.Formatter:
    return json_formatter() if fmt == "json" else text_formatter()


def configure(fmt: str = "text", level: int = logging.WARNING) -> logging.Handler:
    """One stderr handler on the root logger (replacing any), in format ``fmt``, whose
    records carry their request id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return handler
