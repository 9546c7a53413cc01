"""What the views share: ETags and If-Match, the actor, page envelopes, tree bodies, and the
decorator that documents an operation's error responses and headers."""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import orjson
from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import RAISE
from werkzeug.exceptions import PreconditionFailed

from hopper_graph import FlatTreeRow, HopperInstance, Page
from hopper_graph.gcpause import gc_paused

F = TypeVar("F", bound=Callable[..., Any])

ETAG_HEADER = {"description": 'The instance\'s version, quoted: "3".',
               "schema": {"type": "string"}}
LOCATION_HEADER = {"description": "The URL of the new instance.", "schema": {"type": "string"}}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "The ETag you last saw; the change applies only at that version "
                           "(412 otherwise)."}
QUERY: dict[str, Any] = {"location": "query", "error_status_code": 400, "unknown": RAISE}
"""``blp.arguments`` for query parameters: 400 ``invalid-query`` when one is wrong, and an
unknown one is refused (webargs would drop it silently: ``?forse=true`` would not force)."""
HEADER_PARAMETERS = "x-hopper-header-parameters"
"""Where :func:`documented` leaves an operation's header parameters for the spec plugin in
api/openapi.py to append: ``doc(parameters=...)`` would replace the query parameters
flask-smorest documents from the operation's schema (DELETE lost ``force`` and ``reason``)."""
X_ACTOR = {"name": "X-Actor", "in": "header", "required": False, "schema": {"type": "string"},
           "description": "Who makes the change; recorded in the audit event."}


def documented(blp: Blueprint, *codes: int, if_match: bool = False,
               actor: bool = False) -> Callable[[F], F]:
    """List the problem responses ``codes`` (plus 401 and 503, which any call may meet) and
    the optional If-Match and X-Actor headers in the operation's OpenAPI entry."""
    def decorator(func: F) -> F:
        for code in sorted({*codes, 401, 503}):
            func = blp.alt_response(code, response=HTTPStatus(code).name)(func)
        parameters = [p for p, on in ((IF_MATCH, if_match), (X_ACTOR, actor)) if on]
        return blp.doc(**{HEADER_PARAMETERS: parameters})(func) if parameters else func
    return decorator


def etag(instance: HopperInstance) -> dict[str, str]:
    return {"ETag": f'"{instance.version}"'}


MAX_VERSION_DIGITS = 18
"""A version is a 64-bit integer in Neo4j; a longer tag can name none (and must not reach
the driver)."""


def expected_version(instance_id: str) -> frozenset[int] | None:
    """The versions If-Match names: None without the header or with ``*`` (any existing
    instance matches); 412 when it names no version at all.

    Tags are compared as RFC 9110 says for If-Match: strongly, character by character, so
    ``"01"`` is not the ETag ``"1"``, a weak tag ``W/"1"`` matches nothing, and so do an
    unquoted ``1`` and a header that is no list of entity tags. Every version the list
    names is handed to the write, which checks the instance is at one of them in the
    statement that writes: nothing is read before it (``instance_id`` names the instance
    in the error only).
    """
    fields = request.headers.getlist("If-Match")
    if not fields:
        return None
    value = ", ".join(fields)
    if value.strip(" \t") == "*":
        return None
    tags = strong_entity_tags(value)
    versions = frozenset(int(tag) for tag in tags or () if _is_version(tag))
    if not versions:
        raise PreconditionFailed(f"If-Match names no version of instance {instance_id} "
                                 '(ETags are quoted decimal versions: "3").')
    return versions


_ELEMENT = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)")?[ \t]*(,|\Z)')
"""One element of an RFC 9110 list of entity tags (empty elements allowed), and its comma."""


def strong_entity_tags(value: str) -> tuple[str, ...] | None:
    """The opaque parts of the strong tags in a list of entity tags (weak ones dropped:
    they never match strongly), or None when the value is no such list (``*`` included)."""
    tags: list[str] = []
    pos, end = 0, len(value)
    while pos <= end:
        match = _ELEMENT.match(value, pos)
        if match is None:
            return None
        weak, tag, comma = match.groups()
        if tag is not None and not weak:
            tags.append(tag)
        if not comma:
            break
        pos = match.end()
    return tuple(tags)


def _is_version(tag: str) -> bool:
    """Whether ``tag`` is exactly how an ETag writes a version: decimal ASCII digits without
    a leading zero, short enough for a 64-bit integer."""
    return (0 < len(tag) <= MAX_VERSION_DIGITS and tag.isascii() and tag.isdigit()
            and (tag == "0" or not tag.startswith("0")))


def conditional_get(response: Response) -> Response:
    """Answer 304 to a GET whose If-None-Match holds the ETag about to be sent."""
    if request.method == "GET" and response.status_code == 200 and "ETag" in response.headers:
        response.make_conditional(request)
    return response


def actor() -> str | None:
    """Who is asking, from the X-Actor header."""
    return request.headers.get("X-Actor", "").strip()[:255] or None


def instance_document(instance: HopperInstance) -> dict[str, Any]:
    """What ``InstanceSchema`` dumps for an instance, once orjson has written it: the schema
    documents the body and costs ~50 us an instance, too much for a tree of 100,000 (a test
    holds the two equal). Times and enums stay as they are for orjson, which writes them
    as ``isoformat()`` and ``.value`` would, in C (a call per value here was a third of a
    page's documents); ``config`` and ``metadata`` go out as the stored JSON text when
    nothing has decoded them. Only for orjson: ``json`` cannot write these."""
    return {
        "archived_at": instance.archived_at, "config": instance.json_fragment("config"),
        "created_at": instance.created_at, "depth": instance.depth,
        "heartbeat_at": instance.heartbeat_at, "id": instance.id,
        "instance_type": instance.instance_type,
        "metadata": instance.json_fragment("metadata"), "name": instance.name,
        "parent_id": instance.parent_id, "project_id": instance.project_id,
        "scope": instance.scope, "started_at": instance.started_at,
        "status": instance.status, "stopped_at": instance.stopped_at,
        "updated_at": instance.updated_at, "version": instance.version,
    }


def json_response(body: Any) -> Response:
    """A 200 JSON response written by orjson (keys sorted, as Flask writes its own)."""
    return Response(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), 200,
                    mimetype="application/json")


def items_response(instances: list[HopperInstance]) -> Response:
    with gc_paused():
        return json_response({"items": [instance_document(i) for i in instances]})


def page_response(page: Page) -> Response:
    """A page of instances (or of the dicts a field selection gives): ``next`` is the
    cursor of the next page; ``total`` and ``next_offset`` are there when the page was
    asked for by offset."""
    with gc_paused():
        documents = [instance_document(i) if isinstance(i, HopperInstance) else i
                     for i in page.items]
        return json_response({"items": documents, **page_fields(page)})


def page_fields(page: Page) -> dict[str, Any]:
    """What a page response says besides its items."""
    return {"total": page.total, "offset": page.offset, "limit": page.limit,
            "next": page.next,
            "next_offset": page.offset + len(page.items)
            if page.next is not None and page.total is not None else None}


def tree_response(rows: list[FlatTreeRow], fmt: str, max_depth: int | None) -> Response:
    """The /tree response. The nested form is written without recursion, because no JSON
    encoder should recurse once per level of a deep tree."""
    meta = {"root_id": rows[0].instance.id, "format": fmt, "max_depth": max_depth,
            "count": len(rows)}
    with gc_paused():
        if fmt == "flat":
            return json_response({**meta, "items": [
                {"depth": r.depth, "instance": instance_document(r.instance),
                 "parent_id": r.parent_id} for r in rows]})
        head = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS)[:-1]
        return Response(head + b',"tree":' + nested_tree_json(rows) + b"}", 200,
                        mimetype="application/json")


def lean_tree_response(rows: list[dict[str, Any]], fmt: str,
                       max_depth: int | None) -> Response:
    """The /tree response with ?fields=: rows of ``get_tree_fields``, in either form."""
    meta = {"root_id": rows[0]["instance"]["id"], "format": fmt, "max_depth": max_depth,
            "count": len(rows)}
    with gc_paused():
        if fmt == "flat":
            return json_response({**meta, "items": rows})
        head = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS)[:-1]
        body = _nested_json([r["instance"] for r in rows], [r["instance"]["id"] for r in rows],
                            [r["parent_id"] for r in rows])
        return Response(head + b',"tree":' + body + b"}", 200, mimetype="application/json")


def nested_tree_json(rows: list[FlatTreeRow]) -> bytes:
    """``{"instance": ..., "children": [...]}`` for rows given parents first; iterative."""
    return _nested_json([instance_document(r.instance) for r in rows],
                        [r.instance.id for r in rows], [r.parent_id for r in rows])


def _nested_json(documents: list[dict[str, Any]], ids: list[str],
                 parent_ids: list[str | None]) -> bytes:
    dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS
    nodes = [dumps(document, option=sort) for document in documents]
    position = {instance_id: k for k, instance_id in enumerate(ids)}
    children: list[list[int]] = [[] for _ in ids]
    for k, parent_id in enumerate(parent_ids[1:], 1):
        children[position[parent_id]].append(k)  # type: ignore[index]
    out = [b'{"instance":', nodes[0], b',"children":[']
    stack = [[0, 0]]  # node, how many of its children are written
    while stack:
        top = stack[-1]
        kids = children[top[0]]
        if top[1] == len(kids):
            stack.pop()
            out.append(b"]}")
            continue
        child = kids[top[1]]
        out += [b",{" if top[1] else b"{", b'"instance":', nodes[child], b',"children":[']
        top[1] += 1
        stack.append([child, 0])
    return b"".join(out)
