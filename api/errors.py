"""Every error becomes an RFC 9457 problem (``application/problem+json``), here and only here.

A problem carries the standard members ``type``, ``title``, ``status``, ``detail`` and
``instance`` (the request path), plus ``code`` (a stable slug), ``request_id`` (the
request's ``X-Request-ID``) and, when fields are at fault, ``errors`` (dotted field path ->
messages). The title is the code's, from ``TITLES``
(one per code, whatever raised it). A library error adds its details as extension members
(``current_status``, ``allowed_events``, ``id``, ``existing_id``, ``parent_id``, ...).

=====================================  ======  =========================================
library error / situation              status  note
=====================================  ======  =========================================
NotFound, unknown URL                  404     the detail says when an id is no UUID
ValidationError, ScopeRuleViolation    422     request bodies that fail their schema too
Conflict and all its subclasses        409     DuplicateName, InvalidTransition, ...
ConcurrentModification + If-Match      412     without If-Match it stays 409
HookVetoed                             409
Forbidden (a scoped token's limits)    403     names the role and root it would need
DatabaseUnavailable, driver outages    503     with ``Retry-After``
RestoreUnfinished                      503     with ``Retry-After``; names the restore
malformed JSON / query parameters      400
text that is not Unicode (surrogates)  400     ``invalid-text``
nesting > 64 levels, ints > 64 bits    422     ``validation-error``
ConfigurationError, anything else      500     logged; the body says nothing internal
=====================================  ======  =========================================

A problem stays small whatever caused it: ``errors`` holds at most ``MAX_ERRORS`` messages
(``errors_omitted`` counts the rest), and every string in it is cut to ``MAX_TEXT``.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, current_app, has_request_context, request
from neo4j.exceptions import ServiceUnavailable, SessionExpired
from werkzeug.exceptions import BadRequest, HTTPException, UnprocessableEntity
from werkzeug.exceptions import NotFound as RoutingNotFound
from werkzeug.exceptions import ServiceUnavailable as HTTPServiceUnavailable

from api import requestid
from hopper_graph.errors import (
    ConcurrentModification,
    ConfigurationError,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    HookVetoed,
    HopperGraphError,
    NotFound,
    RestoreUnfinished,
    ValidationError,
)
from hopper_graph.validation import extend_errors, flatten_errors

log = logging.getLogger("hopper_graph.api")

PROBLEM_MIMETYPE = "application/problem+json"
TYPE_PREFIX = "urn:hopper-graph:problem:"
"""``type`` is this prefix and the problem's ``code``; docs/api.md lists every code."""
RETRY_AFTER_SECONDS = "5"

LIBRARY_STATUS: dict[type[HopperGraphError], int] = {
    HopperGraphError: 400, NotFound: 404, ValidationError: 422, Conflict: 409,
    HookVetoed: 409, DatabaseUnavailable: 503, ConfigurationError: 500,
    RestoreUnfinished: 503,
    Forbidden: 403,
}
"""The HTTP status of each library error; the nearest class in an error's MRO decides."""
HTTP_CODES = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
              405: "method-not-allowed", 406: "not-acceptable", 412: "precondition-failed",
              413: "content-too-large", 415: "unsupported-media-type",
              422: "validation-error", 500: "internal-error", 503: "service-unavailable"}
"""Stable codes for plain HTTP errors (status phrases differ between Python versions)."""
TITLES = {
    # the library's errors
    "hopper-graph-error": "Request refused",
    "not-found": "Not found",
    "validation-error": "Invalid input",
    "scope-rule-violation": "Hierarchy rule violated",
    "invalid-selector": "Malformed label selector",
    "conflict": "Conflict",
    "duplicate-name": "Name already taken",
    "global-already-exists": "A GLOBAL instance already exists",
    "duplicate-project": "The project already has a PROJECT instance",
    "restore-in-progress": "A restore is in progress",
    "restore-unfinished": "A restore has not finished",
    "invalid-transition": "Transition not allowed",
    "concurrent-modification": "Modified concurrently",
    "parent-not-active": "Parent not active",
    "instance-running": "Instances still running",
    "parent-archived": "Parent archived",
    "limit-exceeded": "Limit reached",
    "hook-vetoed": "Vetoed by a hook",
    "hook-timed-out": "A hook ran past its time limit",
    "database-unavailable": "Database unavailable",
    # a move (hopper_graph/move.py)
    "move-cycle": "Move would make a cycle",
    "parent-mismatch": "Not the expected parent",
    "global-not-movable": "The GLOBAL instance never moves",
    # HTTP's own, and the API's checks of a request
    "bad-request": "Bad request",
    "malformed-json": "Malformed JSON",
    "invalid-text": "Text that is not Unicode",
    "invalid-query": "Invalid query parameters",
    "unauthorized": "Unauthorized",
    "forbidden": "Forbidden",
    "method-not-allowed": "Method not allowed",
    "not-acceptable": "Not acceptable",
    "precondition-failed": "Precondition failed",
    "content-too-large": "Content too large",
    "unsupported-media-type": "Unsupported media type",
    "internal-error": "Internal error",
    "service-unavailable": "Service unavailable",
    "schema-not-applied": "Schema not applied",
    "too-many-streams": "Too many streams",
    # answered by gunicorn, before the app (serve's worker: hopper_graph/cli/worker.py)
    "uri-too-long": "URI too long",
    "expectation-failed": "Expectation failed",
    "header-too-large": "Request headers too large",
    "not-implemented": "Not implemented",
    # liens (hopper_graph/liens.py)
    "instance-protected": "Protected by a lien",
}
"""The one title of each problem ``code``: a code never comes with two titles (a code
missing here, from an HTTP status without one of ours, takes the status's phrase)."""
_LOCATIONS = ("json", "query", "path", "headers", "form")
"""Where webargs found a request's arguments: the first level of its messages."""
_RESERVED = {"type", "title", "status", "detail", "instance", "code", "errors", "request_id"}
_RENAMED = {"status": "current_status"}
MAX_ERRORS = 100
"""At most this many messages in a problem's ``errors``; ``errors_omitted`` counts the rest."""
MAX_TEXT = 500
"""Every string a problem carries (detail, field paths, messages, ...) is cut to this."""
MAX_ERRORS_BYTES = 32 * 1024
"""And ``errors`` stops growing once its JSON text reaches this size."""
MAX_ITEMS = 100
"""Lists among a problem's extension members are cut to this many items."""
_UNAVAILABLE_DETAIL = "Neo4j cannot be reached right now; try again later."
_INTERNAL_DETAIL = "An unexpected error occurred. It has been logged."


class MalformedJSON(BadRequest):
    """The body is not JSON (or nests deeper than the parser allows)."""

    problem_code = "malformed-json"


class InvalidText(BadRequest):
    """A string in the body holds an unpaired UTF-16 surrogate (JSON ``"\\ud800"``): JSON's
    grammar lets it through, but it is no Unicode text and cannot be stored."""

    problem_code = "invalid-text"

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("Some strings in the body are not valid Unicode text.")
        self.data = {"errors": errors}


class BodyOutOfBounds(UnprocessableEntity):
    """The body parses, but goes beyond what can be stored: it nests deeper than the API
    accepts, or holds an integer beyond 64 bits."""

    problem_code = "validation-error"

    def __init__(self, detail: str, errors: dict[str, list[str]]) -> None:
        super().__init__(detail)
        self.data = {"errors": errors}


class SchemaNotApplied(HTTPServiceUnavailable):
    """Neo4j answers, but the library's constraints are not (all) in place."""

    problem_code = "schema-not-applied"


class TooManyStreams(HTTPServiceUnavailable):
    """Every event-stream slot of this worker is taken (``HOPPER_API_MAX_STREAMS``)."""

    problem_code = "too-many-streams"


def problem(status: int, detail: str, *, code: str | None = None,
            headers: Mapping[str, str] | None = None, **members: Any) -> Response:
    """A problem+json response, titled by its code (``TITLES``); ``members`` become
    extension members."""
    phrase = HTTPStatus(status).phrase
    code = code or HTTP_CODES.get(status) or phrase.lower().replace(" ", "-")
    body: dict[str, Any] = {"type": TYPE_PREFIX + code, "title": TITLES.get(code, phrase),
                            "status": status, "detail": _clip(detail), "code": code}
    if has_request_context():
        body["instance"] = _clip(request.path)
        body["request_id"] = requestid.current()
    errors = members.pop("errors", None)
    body.update({k: _bounded(v) for k, v in members.items() if v is not None})
    if errors:
        body["errors"], omitted = bounded_errors(errors)
        if omitted:
            body["errors_omitted"] = omitted
    text = json.dumps(body, default=str, separators=(",", ":"))
    return Response(text, status, headers=dict(headers or {}), mimetype=PROBLEM_MIMETYPE)


def _clip(text: Any) -> str:
    text = str(text)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "\u2026"


def _bounded(value: Any) -> Any:
    """An extension member, its strings clipped and its lists cut (one level deep)."""
    if isinstance(value, str):
        return _clip(value)
    if isinstance(value, (list, tuple)):
        return [_clip(v) if isinstance(v, str) else v for v in value[:MAX_ITEMS]]
    return value


def bounded_errors(errors: Mapping[Any, Any]) -> tuple[dict[str, list[str]], int]:
    """``errors`` cut to ``MAX_ERRORS`` messages and ``MAX_ERRORS_BYTES`` of JSON, each path
    and message clipped; and how many messages were left out."""
    kept: dict[str, list[str]] = {}
    count = size = omitted = 0
    for key, messages in errors.items():
        items = messages if isinstance(messages, (list, tuple)) else [messages]
        path = _clip(key)
        for message in items:
            text = _clip(message)
            cost = len(json.dumps(text)) + (0 if path in kept else len(json.dumps(path)))
            if count >= MAX_ERRORS or size + cost > MAX_ERRORS_BYTES:
                omitted += 1
                continue
            kept.setdefault(path, []).append(text)
            count, size = count + 1, size + cost
    return kept, omitted


def handle_library_error(error: HopperGraphError) -> Response:
    status = next(LIBRARY_STATUS[c] for c in type(error).__mro__ if c in LIBRARY_STATUS)
    if status == 500:  # the server's setup is at fault: logged, and its details kept in
        return handle_unexpected(error)
    if isinstance(error, ConcurrentModification) and "If-Match" in request.headers:
        status = 412
    headers = {}
    detail = error.message
    if isinstance(error, DatabaseUnavailable):
        log.warning("database unavailable: %s", error.message)
        detail, headers = _UNAVAILABLE_DETAIL, {"Retry-After": RETRY_AFTER_SECONDS}
    if isinstance(error, RestoreUnfinished):
        headers = {"Retry-After": RETRY_AFTER_SECONDS}
    members = {_RENAMED.get(k, k): v for k, v in error.details.items()
               if _RENAMED.get(k, k) not in _RESERVED}
    return problem(status, detail, code=error.code, headers=headers, errors=error.errors,
                   **members)


def handle_http_error(error: HTTPException) -> Response:
    """Werkzeug's errors (routing, 413, 415, ...) and flask-smorest's argument errors."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("errors") or data.get("messages") or {}
    errors = field_errors(messages) if isinstance(messages, Mapping) else {}
    code = getattr(error, "problem_code", None)
    detail = error.description or HTTPStatus(status).description
    if isinstance(error, RoutingNotFound):
        detail = _unknown_url(request.path)
    if errors and code is None and status == 422:
        code, detail = "validation-error", "Some fields of the request body are invalid."
    elif errors and code is None and status == 400:
        code, detail = "invalid-query", "Some query parameters are invalid."
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    if status == 500:
        log.error("HTTP %s for %s %s: %s", status, request.method, request.path, error)
        detail = _INTERNAL_DETAIL
    return problem(status, detail, code=code, headers=headers, errors=errors)


_INSTANCE_PATH = re.compile(r"/api/v1/instances/(?P<id>[^/]*)(?:/|$)")


def _unknown_url(path: str) -> str:
    """Why nothing answers at ``path``: under /api/v1/instances/ a segment where an id goes
    that is no UUID (and no route of its own, like ``global``) is named; any other path is
    simply no resource."""
    match = _INSTANCE_PATH.match(path)
    if match is None or _is_uuid(match["id"]) or match["id"] in _static_segments():
        return f"There is no such resource: {path}."
    if not match["id"]:
        return "The instance id is missing from this URL (/api/v1/instances/{id}/...)."
    return f"There is nothing at this URL: instance ids are UUIDs, and {match['id']!r} is not one."


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _static_segments() -> set[str]:
    """The fixed words routes put where an instance id would go (global, projects, ...)."""
    rules = (rule.rule for rule in current_app.url_map.iter_rules())
    return {m["id"] for m in map(_INSTANCE_PATH.match, rules) if m and "<" not in m["id"]}


def handle_driver_outage(error: Exception) -> Response:
    """A driver outage raised outside the library's own translation (e.g. by /ready)."""
    log.warning("database unavailable: %s", type(error).__name__)
    return problem(503, _UNAVAILABLE_DETAIL, code=DatabaseUnavailable.code,
                   headers={"Retry-After": RETRY_AFTER_SECONDS})


def handle_unexpected(error: Exception) -> Response:
    if isinstance(error, HTTPException):  # Flask routes these here if nothing closer matches
        return handle_http_error(error)
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, _INTERNAL_DETAIL, code="internal-error")


def field_errors(messages: Mapping[Any, Any]) -> dict[str, list[str]]:
    """marshmallow/webargs messages ({location: {field: {sub: [msg]}}}) keyed by dotted path,
    sorted; the location level (json, query, ...) is dropped."""
    flat: dict[str, list[str]] = {}
    for key, node in messages.items():
        extend_errors(flat, flatten_errors(node if key in _LOCATIONS else {key: node}))
    return dict(sorted(flat.items()))


def register_error_handlers(app: Flask) -> None:
    """Install the problem renderers on ``app``, replacing flask-smorest's JSON errors."""
    app.register_error_handler(HopperGraphError, handle_library_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(ServiceUnavailable, handle_driver_outage)
    app.register_error_handler(SessionExpired, handle_driver_outage)
    app.register_error_handler(Exception, handle_unexpected)
