// The audit trail. A write creates its events as (:InstanceEvent:PendingEvent) nodes with
// no seq, in its own transaction and under its own locks only: no writer waits for a
// global counter. Each carries written_at, the server's clock read after the write took
// its locks: two writes of one instance are ordered by their locks, so by written_at too. The feed orders them afterwards (sequence_events): under the counter's
// lock, for one short statement and its commit, the pending events already committed get
// the next seq numbers and lose the PendingEvent label. A number is handed out only by a
// committed sequencing, and each hands out numbers above every earlier one, so a reader
// who saw seq N never later finds a committed event below N.

// name: append_events
// Appends audit events in the caller's transaction, linked from their instance when it
// exists (the events of a delete are written after it is gone). All events of one call
// share $at; $events carry their offset within the transaction.
// params: events, at
UNWIND $events AS event
CREATE (e:InstanceEvent:PendingEvent)
SET e = event, e.at = $at, e.written_at = datetime.realtime()
WITH e
OPTIONAL MATCH (n:HopperInstance {id: e.instance_id})
FOREACH (_ IN CASE WHEN n IS NULL THEN [] ELSE [1] END | CREATE (n)-[:HAS_EVENT]->(e))

// name: lock_event_counter
// The first statement of a sequencing transaction: takes the counter's write lock, which
// the transaction holds to its commit, so sequencings run one at a time.
// params: -
MERGE (c:HopperCounter {name: 'event_seq'})
  ON CREATE SET c.value = 0
SET c._lock = true
REMOVE c._lock

// name: sequence_events
// The second statement of a sequencing transaction (the counter is locked): gives the
// oldest committed pending events, up to $limit, the next seq numbers, in the order they
// were written (written_at, then position within their transaction), and returns how
// many; written_at has done its work then and goes.
// Events are locked in that same order here and by a delete (lock_events_of), so the two
// never wait on each other in a circle.
// params: limit
MATCH (c:HopperCounter {name: 'event_seq'})
CALL (c) {
  MATCH (e:PendingEvent)
  WITH e ORDER BY e.written_at, e.offset, e.id LIMIT toInteger($limit)
  RETURN collect(e) AS pending
}
WITH c, pending, c.value AS base
SET c.value = base + size(pending)
WITH pending, base
UNWIND range(0, size(pending) - 1) AS i
WITH pending[i] AS e, base + i + 1 AS seq
SET e.seq = seq
REMOVE e:PendingEvent, e.written_at
RETURN count(e) AS sequenced, max(seq) AS last

// name: count_pending_events
// How many committed events wait for a seq (from the store's statistics, not a scan), and
// whether any of them belongs to $instance_id (null: any instance).
// params: instance_id
RETURN COUNT { (:PendingEvent) } AS pending,
       $instance_id IS NOT NULL
         AND EXISTS { MATCH (e:PendingEvent) WHERE e.instance_id = $instance_id } AS own

// name: lock_events_of
// A delete takes the locks of the events of the instances it removes, in the order the
// sequencer takes them, before its DETACH DELETE would take them in any order.
// params: ids
UNWIND $ids AS id
MATCH (:HopperInstance {id: id})-[:HAS_EVENT]->(e:InstanceEvent)  // what DETACH DELETE locks
WITH e ORDER BY e.written_at, e.offset, e.id
SET e._lock = true
REMOVE e._lock

// name: get_history
// The audit events of one instance, oldest first; found by instance_id, so they outlive it.
// Also whether the instance or any event of it exists at all (a history nobody has is not
// found, at any offset), and whether some of its events still wait for their seq (the
// caller sequences them and reads again).
// Pages by cursor ($after_seq: the last seq seen, 0 for the first page) or by $skip; the
// (instance_id, seq) index gives the events in page order either way.
// params: instance_id, after_seq, skip, limit
// One record of parallel lists, as the many-instance queries answer (EVENT_COLUMNS).
CALL () {
  MATCH (e:InstanceEvent {instance_id: $instance_id})
  USING INDEX SEEK e:InstanceEvent(instance_id, seq)  // never a scan, whatever the stats
  WHERE e.seq > $after_seq
  WITH e ORDER BY e.instance_id, e.seq SKIP toInteger($skip) LIMIT toInteger($limit)  // the index's order
  RETURN collect(e) AS found
}
WITH found, [x IN found | properties(x)] AS props
RETURN EXISTS { MATCH (:HopperInstance {id: $instance_id}) }
         OR EXISTS { MATCH (e:InstanceEvent {instance_id: $instance_id})
                     USING INDEX SEEK e:InstanceEvent(instance_id, seq)
                     WHERE e.seq IS NOT NULL }
         AS known,
       EXISTS { MATCH (e:PendingEvent) WHERE e.instance_id = $instance_id } AS pending,
       {{event_columns(props)}}

// name: events_since
// The change feed: events after a cursor (a seq), in order.
// params: after, limit
// One record of parallel lists, as the many-instance queries answer (EVENT_COLUMNS).
MATCH (e:InstanceEvent)
WHERE e.seq > $after
WITH e ORDER BY e.seq LIMIT toInteger($limit)
WITH collect(e) AS found
WITH [x IN found | properties(x)] AS props
RETURN {{event_columns(props)}}

// name: get_event_seqs
// The seq of each of these events (null while pending): what the in-process subscribers
// are told once their events are sequenced.
// params: ids
UNWIND $ids AS id
MATCH (e:InstanceEvent {id: id})
RETURN e.id AS id, e.seq AS seq

// name: feed_poll
// One tick of the live feed's poller (hopper_graph/feed.py): the events after $after, in
// order, how many committed events wait for their seq (from the store's statistics: when
// that is not 0 the poller sequences them and asks again), and the last seq handed out
// (below $after only when the graph was emptied and started again). One round trip when
// nothing happened.
// params: after, limit
// One record of parallel lists, as the many-instance queries answer (EVENT_COLUMNS).
CALL () {
  MATCH (e:InstanceEvent)
  WHERE e.seq > $after
  WITH e ORDER BY e.seq LIMIT toInteger($limit)
  RETURN collect(e) AS found
}
OPTIONAL MATCH (c:HopperCounter {name: 'event_seq'})
WITH found, [x IN found | properties(x)] AS props, coalesce(c.value, 0) AS head
RETURN COUNT { (:PendingEvent) } AS pending, head, {{event_columns(props)}}

// name: get_event_head
// The last seq a committed sequencing handed out (0 before the first): every event at or
// below it is committed and numbered, every event numbered later is above it.
// params: -
OPTIONAL MATCH (c:HopperCounter {name: 'event_seq'})
RETURN coalesce(c.value, 0) AS head

// name: get_subtree_members
// Which of the instances $ids are in the subtree of $root (the root itself included), for
// the feed's subtree filter. A live instance answers by its chain of ancestors, walked up
// from the instance (one parent per level: the cost is its depth, never the subtree's
// size). A deleted one answers with where it hung: the parent_id its delete event recorded
// (null for events written before deletes recorded it); the caller walks on from there.
// params: root, ids
UNWIND $ids AS id
OPTIONAL MATCH (n:HopperInstance {id: id})
WITH id, n, CASE WHEN n IS NULL THEN [] ELSE [(n)<-[:PARENT_OF*0..]-(a) | a.id] END AS chain
RETURN id, n IS NOT NULL AS live, $root IN chain AS member,
       CASE WHEN n IS NULL THEN head(COLLECT {  // its delete, numbered or not yet
         MATCH (e:InstanceEvent {instance_id: id})
         USING INDEX SEEK e:InstanceEvent(instance_id, seq)
         WHERE e.seq IS NOT NULL AND e.event = 'delete'
         RETURN e.parent_id AS parent_id
         UNION
         MATCH (e:PendingEvent {instance_id: id})
         WHERE e.event = 'delete'
         RETURN e.parent_id AS parent_id
       }) END AS parent_id
