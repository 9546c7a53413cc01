// name: lock_writes
// The first statement of every write transaction (InstanceRepository.write): takes the
// event counter's write lock, held to commit. Writers therefore queue here holding no
// other lock, and none can wait for a lock another holds while that one waits for it
// (measured: ~100 deadlock retries in 25 s of creates, transitions and deletes under
// three parents when the counter was taken last; none since). Every write appends audit
// events under this lock anyway, so seq follows commit order as before.
// The lock is taken by setting and removing a property that nothing reads: SET c.value =
// c.value would also lock, but puts the value read before the wait into the transaction,
// and a later c.value + n then builds on that stale value (measured: 200 increments by four
// writers ended 150 short).
// params: -
MERGE (c:HopperCounter {name: 'event_seq'})
  ON CREATE SET c.value = 0
SET c._lock = true
REMOVE c._lock

// name: append_events
// Appends audit events in the caller's transaction. The counter node hands out sequence
// numbers under its write lock (taken by lock_writes and held to commit), so seq grows in
// commit order and a reader following the feed by seq never skips an event. All events of one call share $at; the
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
// caller writes itself in the same transaction (a bulk import), under the counter's lock
// as in append_events.
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
WITH [x IN found | properties(x)] AS props
RETURN [p IN props | p.id] AS id, [p IN props | p.seq] AS seq,
       [p IN props | p.instance_id] AS instance_id, [p IN props | p.event] AS event,
       [p IN props | p.from_status] AS from_status, [p IN props | p.to_status] AS to_status,
       [p IN props | p.actor] AS actor, [p IN props | p.reason] AS reason,
       [p IN props | p.cause] AS cause, [p IN props | toString(p.at)] AS at

// name: events_since
// The change feed: events after a cursor (a seq), in order.
// params: after, limit
// One record of parallel lists, as the many-instance queries answer (EVENT_COLUMNS).
MATCH (e:InstanceEvent)
WHERE e.seq > $after
WITH e ORDER BY e.seq LIMIT $limit
WITH collect(e) AS found
WITH [x IN found | properties(x)] AS props
RETURN [p IN props | p.id] AS id, [p IN props | p.seq] AS seq,
       [p IN props | p.instance_id] AS instance_id, [p IN props | p.event] AS event,
       [p IN props | p.from_status] AS from_status, [p IN props | p.to_status] AS to_status,
       [p IN props | p.actor] AS actor, [p IN props | p.reason] AS reason,
       [p IN props | p.cause] AS cause, [p IN props | toString(p.at)] AS at
