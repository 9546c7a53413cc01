"""Read-your-writes across workers and clients: the ``Hopper-Bookmark`` header.

Every response to a request that wrote carries the bookmark of its last write; a request
that sends bookmarks back (one header, comma-separated, or several headers) is served at
least that fresh, by whichever worker and cluster member takes it. Within one process the
library's bookmark manager already does this; the header carries it past the process.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, request

from hopper_graph.graph import follow, last_bookmarks, reset_last_bookmarks, unfollow

HEADER = "Hopper-Bookmark"


def init_app(app: Flask) -> None:
    app.before_request(_follow)
    app.after_request(_add_header)
    app.teardown_request(_unfollow)


def _follow() -> None:
    reset_last_bookmarks()  # a worker thread serves many requests
    given = [b.strip() for value in request.headers.getlist(HEADER)
             for b in value.split(",") if b.strip()]
    if given:
        g.hopper_bookmarks = follow(given)  # a bad header raises a 422 problem


def _add_header(response: Response) -> Response:
    bookmarks = last_bookmarks()
    if bookmarks:
        response.headers[HEADER] = ", ".join(bookmarks)
    return response


def _unfollow(_: Any) -> None:
    token = g.pop("hopper_bookmarks", None)
    if token is not None:
        unfollow(token)
