"""``X-Request-ID``: one id per request, taken from the caller or made here, and seen
everywhere the request leaves a trace.

A caller's id is kept when it is 1 to ``MAX_LENGTH`` characters of ``[A-Za-z0-9._~:/+=@-]``
(what tracing systems and load balancers send: UUIDs, hex, ``Root=1-...``); anything else
(too long, empty, spaces, control or non-ASCII characters) is replaced by a fresh UUID, so a
header cannot smuggle text into logs. The id is echoed on every response, errors included,
is the ``request_id`` member of every problem document, and is on every log line written
while the request runs (``hopper_graph.logs.REQUEST_ID``).
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, has_request_context, request

from hopper_graph.logs import REQUEST_ID

HEADER = "X-Request-ID"
MAX_LENGTH = 128
_SAFE = re.compile(rf"[A-Za-z0-9._~:/+=@-]{{1,{MAX_LENGTH}}}")


def init_app(app: Flask) -> None:
    """Register first, so every later hook and handler of ``app`` sees the id."""
    app.before_request(_start)
    app.after_request(_echo)
    app.teardown_request(_end)


def accepted(given: str | None) -> str | None:
    """``given`` if it is a request id this server keeps, else None."""
    return given if given is not None and _SAFE.fullmatch(given) else None


def current() -> str | None:
    """The current request's id (made on first use), or None outside a request."""
    if not has_request_context():
        return None
    if "hopper_request_id" not in g:
        g.hopper_request_id = accepted(request.headers.get(HEADER)) or str(uuid.uuid4())
    return str(g.hopper_request_id)


def _start() -> None:
    REQUEST_ID.set(current())


def _echo(response: Response) -> Response:
    response.headers[HEADER] = current() or ""
    return response


def _end(error: BaseException | None = None) -> None:
    REQUEST_ID.set(None)
