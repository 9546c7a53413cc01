"""Response bodies written by orjson: an instance's document, pages, items and trees
(the nested tree without recursion, however deep)."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response

from hopper_graph import FlatTreeRow, HopperInstance, Page
from hopper_graph.gcpause import gc_paused


def instance_document(instance: HopperInstance) -> dict[str, Any]:
    """What ``InstanceSchema`` dumps for an instance, once orjson has written it: the schema
    documents the body and costs ~50 us an instance, too much for a tree of 100,000 (a test
    holds the two equal). Times and enums stay as they are for orjson, which writes them
    as ``isoformat()`` and ``.value`` would, in C (a call per value here was a third of a
    page's documents); ``config``, ``metadata`` and ``labels`` go out as the stored JSON text when
    nothing has decoded them. Only for orjson: ``json`` cannot write these."""
    return {
        "archived_at": instance.archived_at, "config": instance.json_fragment("config"),
        "created_at": instance.created_at, "depth": instance.depth,
        "heartbeat_at": instance.heartbeat_at, "id": instance.id,
        "instance_type": instance.instance_type, "labels": instance.json_fragment("labels"),
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


def tree_response(rows: list[FlatTreeRow], fmt: str, max_depth: int | None,
                  root_id: str) -> Response:
    """The /tree response of the subtree of ``root_id`` (no rows when a selector matched
    nothing). The nested form is written without recursion, because no JSON encoder should
    recurse once per level of a deep tree."""
    meta = {"root_id": root_id, "format": fmt, "max_depth": max_depth,
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
                       max_depth: int | None, root_id: str) -> Response:
    """The /tree response with ?fields=: rows of ``get_tree_fields``, in either form."""
    meta = {"root_id": root_id, "format": fmt, "max_depth": max_depth,
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
