"""The peer's write workloads: the same work as ours, in the simplest idiomatic SQL.

Each function takes a connection in autocommit mode and makes its change atomic with
``conn.transaction()``; psycopg prepares a statement on the server after its fifth use, as
it does for any application.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

TARGET = {"start": "ACTIVE", "pause": "PAUSED", "resume": "ACTIVE", "stop": "STOPPED",
          "archive": "ARCHIVED"}
RANK = {"GLOBAL": 0, "PROJECT": 1, "ORCHESTRATION": 2}

TRANSITION = """
UPDATE instances
   SET status = %(to)s, version = version + 1, updated_at = now(),
       started_at = CASE WHEN %(event)s = 'start' THEN now() ELSE started_at END,
       stopped_at = CASE WHEN %(event)s = 'stop' THEN now() ELSE stopped_at END,
       archived_at = CASE WHEN %(event)s = 'archive' THEN now() ELSE archived_at END
 WHERE id = %(id)s AND status = %(from)s
"""

EVENT = """
INSERT INTO events (id, instance_id, event, from_status, to_status, actor, reason, cause)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

LOCK_PARENT = """
SELECT scope, status, depth, project_id,
       (config -> 'limits' ->> 'max_child_instances')::int,
       (SELECT (g.config -> 'limits' ->> 'max_depth')::int
          FROM instances g WHERE g.scope = 'GLOBAL' AND g.parent_id IS NULL)
  FROM instances WHERE id = %s FOR UPDATE
"""

CHILDREN = "SELECT count(*) FROM instances WHERE parent_id = %s AND status <> 'ARCHIVED'"

INSERT = """
INSERT INTO instances (id, name, scope, status, instance_type, parent_id, project_id, config,
                       metadata, version, depth)
VALUES (%s, %s, %s, 'CREATED', %s, %s, %s, %s, '{}', 1, %s)
"""

CASCADE_STOP = """
WITH RECURSIVE subtree(id) AS (
    SELECT id FROM instances WHERE id = %(root)s
    UNION ALL
    SELECT c.id FROM instances c JOIN subtree s ON c.parent_id = s.id
), running AS (
    SELECT i.id, i.status, i.instance_type FROM instances i JOIN subtree USING (id)
     WHERE i.status IN ('ACTIVE', 'PAUSED')
       FOR UPDATE OF i
), changed AS (
    UPDATE instances i
       SET status = CASE WHEN r.instance_type = 'EPHEMERAL' THEN 'ARCHIVED' ELSE 'STOPPED' END,
           version = i.version + CASE WHEN r.instance_type = 'EPHEMERAL' THEN 2 ELSE 1 END,
           updated_at = now(), stopped_at = now(),
           archived_at = CASE WHEN r.instance_type = 'EPHEMERAL' THEN now() END
      FROM running r WHERE i.id = r.id
    RETURNING i.id, r.status AS from_status, r.instance_type
), logged AS (
    INSERT INTO events (id, instance_id, event, from_status, to_status, actor, reason, cause)
    SELECT gen_random_uuid(), id, 'stop', from_status, 'STOPPED', %(actor)s, %(reason)s,
           CASE WHEN id <> %(root)s THEN %(root)s::text END
      FROM changed
    UNION ALL
    SELECT gen_random_uuid(), id, 'archive', 'STOPPED', 'ARCHIVED', %(actor)s, %(reason)s,
           %(root)s::text
      FROM changed WHERE instance_type = 'EPHEMERAL'
    RETURNING 1
)
SELECT count(*) FROM logged
"""


class PeerConflict(RuntimeError):
    """The peer's conditional write found the row elsewhere than expected (a lost race)."""


def transition(conn: Any, instance_id: str, event: str, expected: str,
               actor: str | None = None, reason: str | None = None) -> str:
    """One status change and its audit event, in one transaction: the UPDATE writes only
    if the row is still in ``expected``."""
    to = TARGET[event]
    with conn.transaction():
        changed = conn.execute(TRANSITION, {"to": to, "event": event, "id": instance_id,
                                            "from": expected}).rowcount
        if changed != 1:
            raise PeerConflict(f"{instance_id} is not {expected}: cannot {event}")
        conn.execute(EVENT, (uuid.uuid4(), instance_id, event, expected, to, actor, reason,
                             None))
    return to


def create(conn: Any, name: str, scope: str, parent_id: str, instance_type: str,
           config_json: str, actor: str | None = None) -> str:
    """A validated, audited create in one transaction: lock the parent, check scope, depth
    and the parent's child limit against its non-archived children, insert both rows.
    (Name uniqueness is the unique index's.)"""
    instance_id = uuid.uuid4()
    with conn.transaction():
        parent = conn.execute(LOCK_PARENT, (parent_id,)).fetchone()
        if parent is None:
            raise LookupError(f"no parent {parent_id}")
        parent_scope, status, depth, project_id, limit, max_depth = parent
        if status == "ARCHIVED" or RANK[scope] < RANK[parent_scope]:
            raise ValueError(f"cannot create a {scope} under a {status} {parent_scope}")
        if max_depth is not None and depth + 1 > max_depth:
            raise ValueError(f"depth {depth + 1} is past the limit {max_depth}")
        (children,) = conn.execute(CHILDREN, (parent_id,)).fetchone()
        if limit is not None and children >= limit:
            raise ValueError(f"{parent_id} has {children} children, its limit")
        conn.execute(INSERT, (instance_id, name, scope, instance_type, parent_id, project_id,
                              config_json, depth + 1))
        conn.execute(EVENT, (uuid.uuid4(), instance_id, "create", None, "CREATED", actor,
                             None, None))
    return str(instance_id)


def cascade_stop(conn: Any, root_id: str, actor: str | None = None,
                 reason: str | None = None) -> int:
    """Stop ``root_id`` and every running instance below it, archive the EPHEMERAL ones,
    one audit event per change, in one statement of one transaction; returns the number
    of changes."""
    with conn.transaction():
        (changes,) = conn.execute(CASCADE_STOP, {"root": root_id, "actor": actor,
                                                 "reason": reason}).fetchone()
    return int(changes)


def toggler(conn: Any, instance_id: str, status: str = "ACTIVE") -> Callable[[], str]:
    """A function that pauses ``instance_id`` if it is ACTIVE and resumes it if PAUSED,
    one conditional write each call (the concurrent writers' unit of work)."""
    state = [status]

    def toggle() -> str:
        event = "pause" if state[0] == "ACTIVE" else "resume"
        state[0] = transition(conn, instance_id, event, state[0])
        return state[0]
    return toggle


# -- move: re-hang a subtree under a new parent ---------------------------------------------
MOVE_LOCK = """
SELECT id, parent_id, scope, status, depth, project_id,
       (config -> 'limits' ->> 'max_child_instances')::int
  FROM instances WHERE id = ANY(%s::uuid[]) ORDER BY depth, id FOR UPDATE
"""

MOVE_CYCLE = """
WITH RECURSIVE up(id, parent_id) AS (
    SELECT id, parent_id FROM instances WHERE id = %(parent)s
    UNION ALL
    SELECT i.id, i.parent_id FROM instances i JOIN up ON i.id = up.parent_id
)
SELECT EXISTS (SELECT 1 FROM up WHERE id = %(id)s)
"""

MOVE_PARENT = """
UPDATE instances SET parent_id = %(parent)s, version = version + 1, updated_at = now()
 WHERE id = %(id)s
"""

MOVE_SUBTREE = """
WITH RECURSIVE subtree(id) AS (
    SELECT id FROM instances WHERE id = %(id)s
    UNION ALL
    SELECT c.id FROM instances c JOIN subtree s ON c.parent_id = s.id
)
UPDATE instances i
   SET depth = i.depth + %(delta)s, project_id = %(project)s,
       version = i.version + CASE WHEN i.id = %(id)s THEN 0 ELSE 1 END, updated_at = now()
  FROM subtree WHERE i.id = subtree.id
"""

MOVE_EVENT = """
INSERT INTO events (id, instance_id, event, from_status, to_status, actor, reason, cause)
VALUES (gen_random_uuid(), %(id)s, 'move', %(status)s, %(status)s, %(actor)s, %(reason)s,
        NULL)
"""


def move(conn: Any, instance_id: str, parent_id: str, actor: str | None = None,
         reason: str | None = None) -> int:
    """Move ``instance_id`` with its subtree under ``parent_id`` in one transaction: lock
    the instance and both parents, check the new parent (scope, status, child limit) and,
    by a recursive walk up from it, that it is not in the subtree; UPDATE parent_id, then
    depth and project_id of the subtree when they change, and log one event. Returns the
    instances of the subtree rewritten (0 when neither changed)."""
    with conn.transaction():
        (old,) = conn.execute("SELECT parent_id FROM instances WHERE id = %s",
                              (instance_id,)).fetchone()
        rows = {str(r[0]): r for r in conn.execute(
            MOVE_LOCK, ([instance_id, parent_id, str(old)],)).fetchall()}
        _, _, scope, status, depth, project_id, _ = rows[instance_id]
        _, _, parent_scope, parent_status, parent_depth, parent_project, limit = rows[parent_id]
        if parent_status == "ARCHIVED" or RANK[scope] < RANK[parent_scope]:
            raise PeerConflict(f"cannot move a {scope} under a {parent_status} {parent_scope}")
        (cycle,) = conn.execute(MOVE_CYCLE, {"parent": parent_id, "id": instance_id}).fetchone()
        if cycle:
            raise PeerConflict(f"{parent_id} is in the subtree of {instance_id}")
        (children,) = conn.execute(CHILDREN, (parent_id,)).fetchone()
        if limit is not None and children >= limit:
            raise PeerConflict(f"{parent_id} has {children} children, its limit")
        conn.execute(MOVE_PARENT, {"parent": parent_id, "id": instance_id})
        delta = parent_depth + 1 - depth
        project = parent_project if scope == "ORCHESTRATION" else project_id
        rewritten = 0
        if delta or project != project_id:
            rewritten = conn.execute(MOVE_SUBTREE, {"id": instance_id, "delta": delta,
                                                    "project": project}).rowcount
        conn.execute(MOVE_EVENT, {"id": instance_id, "status": status, "actor": actor,
                                  "reason": reason})
    return int(rewritten)
