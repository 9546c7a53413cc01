// name: append_events
// Appends audit events in the caller's transaction. The counter node hands out sequence
// numbers under its write lock, held to commit, so seq grows in commit order and a reader
// following the feed by seq never skips an event. All events of one call share $at; the
// i-th event (from 1) gets seq base + i.
// params: events, at
MERGE (c:HopperCounter {name: 'event_seq'})
  ON CREATE SET c.value = 0
SET c.value = c.value + size($events)
WITH c.value - size($events) AS base
CALL (base) {
  UNWIND range(0, size($events) - 1) AS i
  CREATE (e:InstanceEvent)
  SET e = $events[i], e.seq = base + i + 1, e.at = $at
  WITH e
  OPTIONAL MATCH (n:HopperInstance {id: e.instance_id})
  FOREACH (_ IN CASE WHEN n IS NULL THEN [] ELSE [1] END | CREATE (n)-[:HAS_EVENT]->(e))
}
RETURN base

// name: reserve_event_seqs
// Hands out $count consecutive seq numbers, base + 1 .. base + $count, for events the
// caller writes itself in the same transaction (a bulk import); the counter's lock is
// held to commit, as in append_events.
// params: count
MERGE (c:HopperCounter {name: 'event_seq'})
  ON CREATE SET c.value = 0
SET c.value = c.value + $count
RETURN c.value - $count AS base

// name: get_history
// The audit events of one instance, oldest first; found by instance_id, so they outlive it.
// params: instance_id, skip, limit
// One record of parallel lists, as the many-instance queries answer (EVENT_COLUMNS).
MATCH (e:InstanceEvent {instance_id: $instance_id})
WHERE e.seq IS NOT NULL  // lets the planner use the (instance_id, seq) index
WITH e ORDER BY e.seq SKIP $skip LIMIT $limit
WITH collect(e) AS found
RETURN [x IN found | x.id] AS id, [x IN found | x.seq] AS seq,
       [x IN found | x.instance_id] AS instance_id, [x IN found | x.event] AS event,
       [x IN found | x.from_status] AS from_status, [x IN found | x.to_status] AS to_status,
       [x IN found | x.actor] AS actor, [x IN found | x.reason] AS reason,
       [x IN found | x.cause] AS cause, [x IN found | toString(x.at)] AS at

// name: events_since
// The change feed: events after a cursor (a seq), in order.
// params: after, limit
// One record of parallel lists, as the many-instance queries answer (EVENT_COLUMNS).
MATCH (e:InstanceEvent)
WHERE e.seq > $after
WITH e ORDER BY e.seq LIMIT $limit
WITH collect(e) AS found
RETURN [x IN found | x.id] AS id, [x IN found | x.seq] AS seq,
       [x IN found | x.instance_id] AS instance_id, [x IN found | x.event] AS event,
       [x IN found | x.from_status] AS from_status, [x IN found | x.to_status] AS to_status,
       [x IN found | x.actor] AS actor, [x IN found | x.reason] AS reason,
       [x IN found | x.cause] AS cause, [x IN found | toString(x.at)] AS at
