"""The floor of every write: the bare driver doing the same change and its audit event as
ONE auto-commit Cypher statement (one round trip, one commit), with nothing of ours
around it: no validation, no state machine, no locks beyond the ones the write takes, no
hydration of what comes back. Our figure over the floor's is what our code adds."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from neo4j import Driver

TOGGLE = """
MATCH (n:HopperInstance {id: $id})
WITH n, CASE n.status WHEN 'ACTIVE' THEN 'PAUSED' ELSE 'ACTIVE' END AS to
CREATE (n)-[:HAS_EVENT]->(:InstanceEvent:PendingEvent {id: $event_id, instance_id: n.id,
  event: CASE to WHEN 'PAUSED' THEN 'pause' ELSE 'resume' END, from_status: n.status,
  to_status: to, at: $now, offset: 1, written_at: datetime.realtime()})
SET n.status = to, n.version = n.version + 1, n.updated_at = $now
"""

TRANSITION = """
MATCH (n:HopperInstance {id: $id})
CREATE (n)-[:HAS_EVENT]->(:InstanceEvent:PendingEvent {id: $event_id, instance_id: n.id,
  event: $event, from_status: n.status, to_status: $to, at: $now, offset: 1,
  written_at: datetime.realtime()})
SET n.status = $to, n.version = n.version + 1, n.updated_at = $now
"""

CREATE = """
MATCH (p:HopperInstance {id: $parent_id})
CREATE (p)-[:PARENT_OF]->(n:HopperInstance)-[:HAS_EVENT]->(e:InstanceEvent:PendingEvent)
SET n = $props, n.created_at = $now, n.updated_at = $now,
    e = {id: $event_id, instance_id: $props.id, event: 'create', to_status: 'CREATED',
         at: $now, offset: 1, written_at: datetime.realtime()}
"""

HEARTBEAT = "MATCH (n:HopperInstance {id: $id}) SET n.heartbeat_at = $now"

CASCADE_STOP = """
MATCH (root:HopperInstance {id: $id})-[:PARENT_OF*0..]->(d:HopperInstance)
WHERE d.status IN ['ACTIVE', 'PAUSED']
WITH d, d.status AS was, d.instance_type = 'EPHEMERAL' AS ephemeral
CREATE (d)-[:HAS_EVENT]->(:InstanceEvent:PendingEvent {id: randomUUID(), instance_id: d.id,
  event: 'stop', from_status: was, to_status: 'STOPPED', cause: $id, at: $now,
  offset: 1, written_at: datetime.realtime()})
FOREACH (_ IN CASE WHEN ephemeral THEN [1] ELSE [] END |
  CREATE (d)-[:HAS_EVENT]->(:InstanceEvent:PendingEvent {id: randomUUID(), instance_id: d.id,
    event: 'archive', from_status: 'STOPPED', to_status: 'ARCHIVED', cause: $id, at: $now,
    offset: 2, written_at: datetime.realtime()}))
SET d.status = CASE WHEN ephemeral THEN 'ARCHIVED' ELSE 'STOPPED' END, d.stopped_at = $now,
    d.archived_at = CASE WHEN ephemeral THEN $now END,
    d.version = d.version + CASE WHEN ephemeral THEN 2 ELSE 1 END, d.updated_at = $now
RETURN count(d) + count(CASE WHEN ephemeral THEN 1 END) AS changes
"""
"""The cascade stop's floor: every running instance of the subtree stopped, and an
EPHEMERAL one archived at once (PRODUCT.md, "Cascade"; the peer's statement does the same),
each change with its event. The subtree of the benchmark's cascade is a PROJECT and its
EPHEMERAL leaves, so archiving the leaves that stop is the whole of the auto-archive."""


class Floor:
    """Bare statements on one database of one driver."""

    def __init__(self, driver: Driver, database: str | None) -> None:
        self.driver = driver
        self.database = database

    def run(self, query: str, **params: Any) -> list[Any]:
        """One auto-commit statement in a session of its own, as our writes run."""
        with self.driver.session(database=self.database) as session:
            return list(session.run(query, params))

    def toggler(self, instance_id: str) -> Callable[[], Any]:
        """Pause ``instance_id`` if ACTIVE, resume it if PAUSED: one statement a call."""
        return lambda: self.run(TOGGLE, id=instance_id, event_id=str(uuid.uuid4()),
                                now=datetime.now(UTC))

    def transition(self, instance_id: str, event: str, to: str) -> list[Any]:
        return self.run(TRANSITION, id=instance_id, event=event, to=to,
                        event_id=str(uuid.uuid4()), now=datetime.now(UTC))

    def create(self, parent_id: str, props: dict[str, Any]) -> list[Any]:
        props = {**props, "id": str(uuid.uuid4())}
        return self.run(CREATE, parent_id=parent_id, props=props, event_id=str(uuid.uuid4()),
                        now=datetime.now(UTC))

    def heartbeat(self, instance_id: str) -> list[Any]:
        return self.run(HEARTBEAT, id=instance_id, now=datetime.now(UTC))

    def cascade_stop(self, root_id: str) -> int:
        rows = self.run(CASCADE_STOP, id=root_id, now=datetime.now(UTC))
        return int(rows[0]["changes"])
