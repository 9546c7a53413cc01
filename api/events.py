"""The /api/v1/events blueprint: the durable change feed, read by cursor or followed live.

``GET /api/v1/events`` pages the feed; ``GET /api/v1/events/stream`` follows it as
server-sent events (``text/event-stream``), each event written as::

    id: <seq>
    event: <the audit event: create, start, ..., delete>
    data: <the event as JSON, as the pages give it>

The stream is the library's ``Feed.follow`` (one poller per worker process, whatever the
number of streams) written out as it yields. Why a hand-written generator and no SSE
package: the one for Flask on PyPI (flask-sse) publishes through Redis and has not been
released since 2021; the format itself is three lines an event.

A stream holds one of the worker's threads for as long as it is open, so each worker
serves at most ``HOPPER_API_MAX_STREAMS`` at once (keep it below gunicorn's ``--threads``:
the other threads stay free for ordinary requests); one more gets 503 with
``Retry-After``, at once.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import orjson
from flask import Flask, Response, current_app, request
from flask_smorest import Blueprint
from marshmallow import EXCLUDE
from werkzeug.exceptions import BadRequest

from api import access, guards, metrics, requestid
from api import schemas as s
from api.access import OWN_SUBTREE, READER, needs, within
from api.errors import TooManyStreams
from api.extension import manager
from api.openapi import documented
from api.schemas import QUERY
from hopper_graph import InstanceEvent
from hopper_graph.errors import HopperGraphError
from hopper_graph.logs import REQUEST_ID

log = logging.getLogger("hopper_graph.api")

blp = Blueprint("events", __name__, url_prefix="/api/v1/events",
                description="The change feed: every audit event, in commit order.")
access.guard(blp)  # every operation below declares its role with @needs
blp.before_request(guards.check_body)

STREAM_MIMETYPE = "text/event-stream"
RECONNECT_MS = 2000
"""The ``retry:`` an EventSource waits before it reconnects after a stream ends."""
RETRY_AFTER_SECONDS = 5
CLOSE_CHECK_SECONDS = 0.25
"""How often an idle stream looks whether its client has gone, so that a closed connection
frees its slot within a second of the close (not at the next keep-alive, 15 s later)."""
_SEQ = re.compile(r"[0-9]{1,19}")


@blp.route("")
@needs(READER, on=OWN_SUBTREE)
@blp.arguments(s.EventsQuerySchema, **QUERY)
@blp.response(200, s.EventFeedSchema)
@documented(blp)
def events(query: dict[str, Any]) -> Any:
    """Audit events with ``seq`` greater than ?after=, oldest first.

    Keep ``next_after`` and pass it as ?after= next time: nothing is missed or seen twice.
    A scoped token's page reads a bounded stretch of the feed, and a page with ?selector=
    reads ?limit= events keeping those of matching instances: either may hold fewer events
    than ?limit= (even none) while ``next_after`` moves on; go on until it reaches ``head``.
    ``head`` is the newest event's seq: pass it as ?after= to see only what happens next.
    """
    library = manager()
    root = within()
    if root is None:  # numbers what waits; next_after is the last event read
        items, next_after = library.feed.scan(query["after"], query["limit"],
                                              query["selector"])
    else:  # a scoped token sees its subtree's events only, from a bounded read
        items, next_after = library.feed.read_within(query["after"], root, query["limit"],
                                                     selector=query["selector"])
    head = library.feed.numbered_head()  # a read: the page just numbered the feed
    return {"items": items, "after": query["after"], "next_after": next_after,
            "limit": query["limit"], "head": max(head, next_after)}


@blp.route("/stream")
@needs(READER, on=OWN_SUBTREE)
@blp.arguments(s.EventStreamQuerySchema, **QUERY)
@blp.arguments(s.EventStreamHeadersSchema, location="headers", unknown=EXCLUDE,
               error_status_code=400)
@blp.doc(responses={"200": {
    "description": "Server-sent events, one per audit event, until the client closes the "
                   "connection; a `: keep-alive` comment when nothing happened for a while.",
    "content": {STREAM_MIMETYPE: {"schema": {
        "type": "string", "example": 'id: 43\nevent: start\ndata: {"seq": 43, ...}\n\n'}}}}})
@documented(blp, 400, 404)
def stream(query: dict[str, Any], headers: dict[str, Any]) -> Response:
    """Follow the change feed live: each event as it commits, after ?after= or the
    Last-Event-ID header, optionally only those of one ?subtree= and of instances a label
    ?selector= matches."""
    after = _resume_point(query["after"], headers["last_event_id"])
    subtree = _subtree(query["subtree"])
    slots = _taken_slot()
    heartbeat = current_app.config["HOPPER_API_STREAM_HEARTBEAT"]
    try:
        events = manager().feed.follow(after, subtree, selector=query["selector"],
                                       heartbeat=min(heartbeat, CLOSE_CHECK_SECONDS))
    except BaseException:
        slots.release()
        raise
    client = request.environ.get("gunicorn.socket")
    response = Response(_written(events, heartbeat, client, requestid.current()),
                        mimetype=STREAM_MIMETYPE,
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(slots.release)  # the server closes it however the stream ends
    return response


def _subtree(asked: str | None) -> str | None:
    """The subtree a stream follows: the one asked for, which a scoped token must reach
    (403 otherwise), or the token's own."""
    if asked is not None:
        access.check_within(asked)
        return asked
    return within()


def _taken_slot() -> StreamSlots:
    """This worker's stream slots, one of them now taken; 503 when none is free."""
    slots = _slots(current_app)
    if not slots.acquire():
        raise TooManyStreams(
            f"This worker already serves {slots.limit} event stream(s), its most; try again "
            "shortly, or read the pages of /api/v1/events.", retry_after=RETRY_AFTER_SECONDS)
    return slots


def _resume_point(after: int, last_event_id: str | None) -> int:
    """Where the stream starts: the Last-Event-ID header if sent, else ?after=."""
    if last_event_id is None:
        return after
    value = last_event_id.strip()
    if not _SEQ.fullmatch(value) or int(value) > s.MAX_CURSOR:
        raise BadRequest("Last-Event-ID must be the seq of an event this stream sent (a "
                         "decimal number).")
    return int(value)


def _written(events: Generator[InstanceEvent | None, None, None], heartbeat: float,
             client: socket.socket | None, request_id: str | None) -> Iterator[bytes]:
    """The stream's bytes: a reconnection delay first (so the client sees the response
    start now, not with the first event), then each event, and a keep-alive when nothing
    was written for ``heartbeat`` seconds. It ends as soon as the ``client`` has closed the
    connection: ``events`` wakes it every CLOSE_CHECK_SECONDS to look. It runs after the
    request's teardown, so it puts the request's id back for its own log lines (the
    thread serves nothing else while it runs)."""
    REQUEST_ID.set(request_id)
    try:
        yield f"retry: {RECONNECT_MS}\n\n".encode()
        written = time.monotonic()
        for event in events:
            if event is not None:
                yield _event_block(event)
            elif client is not None and _closed_by_peer(client):
                return  # the response's close frees the stream's slot
            elif time.monotonic() - written >= heartbeat:
                yield b": keep-alive\n\n"
            else:
                continue
            written = time.monotonic()
    except HopperGraphError as exc:  # e.g. Neo4j went away: end it, the client resumes
        log.warning("event stream ended: %s", exc.message)
    finally:
        events.close()
        REQUEST_ID.set(None)


def _closed_by_peer(client: socket.socket) -> bool:
    """Whether the client has closed its end (or reset it), without reading anything: a
    stream's client sends nothing, so a readable socket means end of file, or a request it
    pipelined (which the stream never answers either way)."""
    try:
        return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def _event_block(event: InstanceEvent) -> bytes:
    data = orjson.dumps(event.to_dict(), option=orjson.OPT_SORT_KEYS)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.seq, event.event.encode(), data)


class StreamSlots:
    """How many streams a worker process serves at once, at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self._open >= self.limit:
                return False
            self._open += 1
        metrics.stream_opened()
        return True

    def release(self) -> None:
        with self._lock:
            self._open -= 1
        metrics.stream_closed()


def _slots(app: Flask) -> StreamSlots:
    with _SLOTS_LOCK:
        return app.extensions.setdefault(
            "hopper_graph_streams", StreamSlots(app.config["HOPPER_API_MAX_STREAMS"]))


_SLOTS_LOCK = threading.Lock()
