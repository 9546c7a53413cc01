"""The peer's read workloads: the same reads as ours, in the simplest idiomatic SQL.

Recursive CTEs over ``parent_id`` for ancestors, descendants and trees; keyset pages
(``(created_at, id) > (after)`` or ``seq > after``, then ``ORDER BY ... LIMIT``) for
children, filtered lists and history. Every instance comes back with all its columns as a
dict (``dict_row``), ids as UUIDs and timestamps as datetimes, as a careful application
reads them; ``config`` and ``metadata`` as JSON text, as ours keep them until read (see
``Peer.connect``). Each function takes a connection from ``Peer.connect`` (autocommit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

try:
    from psycopg.rows import dict_row
except ImportError:  # pragma: no cover - without psycopg the peer does not start at all
    dict_row = None  # type: ignore[assignment]

COLUMNS = ("id, name, scope, status, instance_type, parent_id, project_id, config, "
           "config_set, metadata, labels, version, depth, created_at, updated_at, started_at, "
           "stopped_at, archived_at, heartbeat_at")
"""Every column of an instance: the fields our HopperInstance carries."""

EVENT_COLUMNS = "seq, id, instance_id, event, from_status, to_status, actor, reason, cause, at"

Keyset = tuple[datetime, str]
"""A position in creation order: the (created_at, id) of the last row of a page."""

ANCESTORS = f"""
WITH RECURSIVE up(ancestor_id, distance) AS (
    SELECT parent_id, 1 FROM instances WHERE id = %s
    UNION ALL
    SELECT i.parent_id, up.distance + 1 FROM instances i JOIN up ON i.id = up.ancestor_id
)
SELECT {COLUMNS} FROM up JOIN instances ON instances.id = up.ancestor_id
 ORDER BY up.distance
"""

SUBTREE = f"""
WITH RECURSIVE subtree AS (
    SELECT id, 0 AS level FROM instances WHERE id = %(root)s
    UNION ALL
    SELECT c.id, s.level + 1 FROM instances c JOIN subtree s ON c.parent_id = s.id
)
SELECT {COLUMNS}, level FROM subtree JOIN instances USING (id)
 WHERE level >= %(min_level)s
 ORDER BY level, created_at, id
 LIMIT %(limit)s
"""
"""The subtree of ``root`` in level order (creation order within a level), each row with
its ``level`` below the root; ``min_level`` 1 leaves the root out (the descendants)."""

CHILDREN_FIRST = f"""
SELECT {COLUMNS} FROM instances WHERE parent_id = %s
 ORDER BY created_at, id LIMIT %s
"""

CHILDREN_AFTER = f"""
SELECT {COLUMNS} FROM instances WHERE parent_id = %s AND (created_at, id) > (%s, %s)
 ORDER BY created_at, id LIMIT %s
"""

LIST_FIRST = f"""
SELECT {COLUMNS} FROM instances WHERE scope = %s AND status = %s
 ORDER BY created_at, id LIMIT %s
"""

LIST_AFTER = f"""
SELECT {COLUMNS} FROM instances
 WHERE scope = %s AND status = %s AND (created_at, id) > (%s, %s)
 ORDER BY created_at, id LIMIT %s
"""

SELECTED_FIRST = f"""
SELECT {COLUMNS} FROM instances WHERE labels @> %s::jsonb AND NOT labels ? %s
 ORDER BY created_at, id LIMIT %s
"""
"""A page of a selector ``key=value,!other`` in creation order: the GIN index finds the
instances that carry the label, the second test filters them, and they are sorted."""

HISTORY = f"""
SELECT {EVENT_COLUMNS} FROM events WHERE instance_id = %s AND seq > %s
 ORDER BY seq LIMIT %s
"""

FEED = f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > %s ORDER BY seq LIMIT %s"

POSITION = """
SELECT created_at, id FROM instances WHERE parent_id = %s
 ORDER BY created_at, id OFFSET %s LIMIT 1
"""


def _rows(conn: Any, query: str, params: Any) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


def ancestors(conn: Any, instance_id: str) -> list[dict[str, Any]]:
    """The parent, its parent, and so on up to the root: nearest first."""
    return _rows(conn, ANCESTORS, (instance_id,))


def descendants(conn: Any, root_id: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Everything below ``root_id`` in level order; ``limit`` rows at most (a first page)."""
    return _rows(conn, SUBTREE, {"root": root_id, "min_level": 1, "limit": limit})


def flat_tree(conn: Any, root_id: str) -> list[dict[str, Any]]:
    """``root_id`` and everything below it, parents first, each with its ``level``."""
    return _rows(conn, SUBTREE, {"root": root_id, "min_level": 0, "limit": None})


@dataclass(slots=True)
class Node:
    """A node of the nested tree: the instance row and its children."""

    row: dict[str, Any]
    children: list[Node] = field(default_factory=list)


def nested_tree(conn: Any, root_id: str) -> Node:
    """The flat tree's rows linked to their parents in one pass (parents come first), no
    recursion, so any depth works."""
    rows = flat_tree(conn, root_id)
    nodes = {row["id"]: Node(row) for row in rows}
    for row in rows[1:]:
        nodes[row["parent_id"]].children.append(nodes[row["id"]])
    return nodes[rows[0]["id"]]


def children_page(conn: Any, parent_id: str, after: Keyset | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    """The children of ``parent_id`` after the keyset ``after`` (None: the first page), in
    creation order: an index range scan of ``(parent_id, created_at, id)``."""
    if after is None:
        return _rows(conn, CHILDREN_FIRST, (parent_id, limit))
    return _rows(conn, CHILDREN_AFTER, (parent_id, *after, limit))


def child_position(conn: Any, parent_id: str, offset: int) -> Keyset:
    """Setup, not measured: the keyset that starts a page at ``offset``, as a client that
    walked there page by page would hold it."""
    created_at, id_ = conn.execute(POSITION, (parent_id, offset - 1)).fetchone()
    return created_at, id_


def list_page(conn: Any, scope: str, status: str, after: Keyset | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
    """Instances of one scope and status after ``after``, in creation order: an index
    range scan of ``(scope, status, created_at, id)``."""
    if after is None:
        return _rows(conn, LIST_FIRST, (scope, status, limit))
    return _rows(conn, LIST_AFTER, (scope, status, *after, limit))


def history_page(conn: Any, instance_id: str, after: int = 0,
                 limit: int = 100) -> list[dict[str, Any]]:
    """The events of one instance with ``seq`` after ``after``, oldest first."""
    return _rows(conn, HISTORY, (instance_id, after, limit))


def events_since(conn: Any, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """The change feed: every event with ``seq`` after ``after``, in order."""
    return _rows(conn, FEED, (after, limit))


def selected_page(conn: Any, key: str, value: str, absent: str,
                  limit: int = 100) -> list[dict[str, Any]]:
    """The first page, in creation order, of the instances labelled ``key=value`` and not
    ``absent``: ours is the selector ``key=value,!absent``."""
    return _rows(conn, SELECTED_FIRST, (json.dumps({key: value}), absent, limit))
